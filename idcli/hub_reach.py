"""Asking the Hugging Face hub once, and what its silence or refusal means to the person at the keyboard.

huggingface_hub's ``hf_hub_download`` asks again after a failed metadata request, whatever the cause: five retries
with 1+2+4+8+8 s between them, each allowed a 60 s timeout (``_ETAG_RETRY_TIMEOUT``, which no setting changes). So a
closed port cost about 25 s before the refusal, and a firewall that drops packets 406 s. ``ask_hub_once``
makes the first request alone, through huggingface_hub's own ``get_hf_file_metadata`` with its retries off and its
``HF_HUB_ETAG_TIMEOUT`` (10 s unless set), and a download starts only when the hub answered.

The hub's refusals are told apart by huggingface_hub's exception types (``hf_raise_for_status`` reads the hub's
``X-Error-Code``): a gated repository, one that is not there (or private, without a login), an unknown revision;
each with what to do, rather than the words of a model that is merely not in the cache.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HubProblem:
    """Why a hub file could not be had: ``why`` completes "the tokenizer ... cannot be downloaded: ", ``fix`` is
    what to do."""

    kind: str  # "unreachable", "gated", "no-repository", "no-revision", "bad-token", "hub-error", "broken-off"
    why: str
    fix: str

    def refusal(self, what: str, *, uncached: bool = False) -> str:
        """The words of ``what`` ("cannot load model 'ORG/NAME'") refused for this problem, as every loader and
        ``models fetch`` say it; ``uncached``: asked before a download the cache lacks."""
        before = "it is not in the Hugging Face cache and cannot be downloaded: " if uncached else ""
        return f"{what}: {before}{self.why}. To fix: {self.fix}"


def ask_hub_once(repo_id: str, filename: str, revision: str | None = None,
                 endpoint: str | None = None) -> HubProblem | None:
    """One metadata request (HEAD) for ``filename`` of the model repository ``repo_id``, no retries, within
    ``HF_HUB_ETAG_TIMEOUT`` seconds, at ``endpoint`` (None: HF_ENDPOINT). None when the hub answered about the file
    (that it has it, or that this repository has no such file: the download's own loop handles that); else what
    stands in the way. Offline mode (HF_HUB_OFFLINE=1, as the environment says it now) asks nothing and returns None:
    the download refuses at once there."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import RemoteEntryNotFoundError
    from huggingface_hub.utils import httpx

    if constants.is_offline_mode() or offline_in_environment():
        return None
    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    try:
        get_hf_file_metadata(url, timeout=constants.HF_HUB_ETAG_TIMEOUT, endpoint=endpoint, retry_on_errors=False)
    except RemoteEntryNotFoundError:
        return None
    except (OSError, ValueError, httpx.TransportError) as exc:  # the hub's refusals are OSErrors
        problem = hub_problem(exc, repo_id, revision, endpoint)
        if problem is None:
            raise
        return problem
    return None


def offline_now() -> bool:
    """Whether huggingface_hub is in offline mode, as it read the environment at import or as the environment says
    now (``offline_in_environment``): what a load must honour before it lets a library try the network."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or offline_in_environment()


def offline_in_environment() -> bool:
    """Whether HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) says offline now. huggingface_hub reads it once, when first
    imported: a process that set it later (a host script, the tests' fixture) means it all the same, and is never
    sent a request for it."""
    import os

    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in constants.ENV_VARS_TRUE_VALUES


def hub_problem(exc: BaseException, repo_id: str, revision: str | None = None,
                endpoint: str | None = None, *, downloading: bool = False) -> HubProblem | None:
    """What ``exc``, raised by a huggingface_hub call about ``repo_id``, means; None for anything else (offline
    mode, a file the repository lacks, a damaged download: the caller's own words). ``downloading``: raised by the
    download after the one request was answered, where a transport error is a download that broke off (after
    huggingface_hub's own resumes), not a hub that cannot be reached."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        DisabledRepoError,
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import httpx

    endpoint = endpoint or constants.ENDPOINT
    page = f"{endpoint}/{repo_id}"
    if isinstance(exc, GatedRepoError):  # before RepositoryNotFoundError: it is one
        return HubProblem("gated", f"'{repo_id}' is a gated repository and this machine has no access to it (no "
                          "login, or its licence not accepted for this account)",
                          f"accept the model's licence on its page ({page}) and log in (`hf auth login`, or set "
                          "HF_TOKEN to a token of that account), then run again")
    if isinstance(exc, (RepositoryNotFoundError, DisabledRepoError)):
        return HubProblem("no-repository", f"the hub ({endpoint}) has no repository '{repo_id}' that this machine "
                          "may read (a misspelt id, or a private repository without a login)",
                          "check the id (`model.id`, or the preset's) against the model's page on the hub; for a "
                          "private repository, log in (`hf auth login`, or HF_TOKEN)")
    if isinstance(exc, RevisionNotFoundError):
        return HubProblem("no-revision", f"'{repo_id}' has no revision '{revision}' on the hub ({endpoint})",
                          "check `model.revision` (a branch, tag or commit of the repository)")
    if isinstance(exc, OfflineModeIsEnabled):
        return None
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, HfHubHTTPError) and status == 401 and "Invalid credentials" in str(exc.server_message):
        # A wrong HF_TOKEN (or saved login): the hub refuses it even for a public repository.
        return HubProblem("bad-token", f"the hub ({endpoint}) refused this machine's token (HF_TOKEN, or the saved "
                          "login): invalid credentials", "set HF_TOKEN to a valid token or log in again (`hf auth "
                          "login`); for a public repository, unset HF_TOKEN")
    if isinstance(exc, HfHubHTTPError) and isinstance(status, int) and (status == 429 or status >= 500):
        # An overloaded, rate-limiting or failing hub: asked once (the check) or after huggingface_hub's own
        # retries (the download). Before, an OSError the command took for a file-system failure (exit 5).
        phrase = getattr(exc.response, "reason_phrase", "") or ""
        return HubProblem("hub-error", f"the hub ({endpoint}) answered {status}{f' {phrase}' if phrase else ''}"
                          f"{' to the download' if downloading else ''} (busy, rate-limiting or failing)",
                          "wait and run again (what was downloaded whole stays in the cache; nothing partial was "
                          "kept), or set HF_ENDPOINT to a mirror")
    if downloading and isinstance(exc, httpx.TransportError) \
            and not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        # answered, then cut off: not a timeout of the check, nor a connection never made (a name not resolved, a
        # port refused: the hub could not be reached, below)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return HubProblem("broken-off", f"the download from the hub ({endpoint}) broke off ({reason}), after "
                          "huggingface_hub's own attempts to resume it",
                          "run the same command again (what was downloaded whole stays in the cache; nothing "
                          "partial was kept)")
    if isinstance(exc, httpx.TransportError):  # refused, timed out, reset, a proxy or TLS failure
        reason = "no answer in time" if isinstance(exc, httpx.TimeoutException) else \
            (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        proxy = proxy_for(endpoint)
        if proxy is not None:  # the refusal or silence may be the proxy's, not the hub's: said so, not left to guess
            reason += f", through the proxy {proxy} (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY; NO_PROXY to bypass it)"
        return HubProblem("unreachable", f"the hub ({endpoint}) could not be reached ({reason}; asked once, "
                          f"waiting at most HF_HUB_ETAG_TIMEOUT={constants.HF_HUB_ETAG_TIMEOUT} s)",
                          "connect (HF_ENDPOINT for a mirror) and run again; or, to work offline, set "
                          f"HF_HUB_OFFLINE=1 with the model in the Hugging Face cache (`hf download {repo_id}` where "
                          "there is network, then the cache copied here) or point `model.id` at a local diffusers "
                          "folder")
    return None


def proxy_for(url: str) -> str | None:
    """The proxy the environment gives requests to ``url`` (httpx reads the same variables), without any
    user name or password it holds; None when there is none or NO_PROXY bypasses it."""
    from urllib import request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    proxies = request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    bypass = request.proxy_bypass_environment  # type: ignore[attr-defined]  # public, not in typeshed
    if not proxy or bypass(parts.hostname or "", proxies):
        return None
    shown = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return f"{shown.scheme}://{shown.hostname}" + (f":{shown.port}" if shown.port else "")


def ask_before_download(source: str, filename: str, revision: str | None = None) -> HubProblem | None:
    """``ask_hub_once`` for a file a library is about to download by hub id: None without asking where ``source`` is
    a local folder or the file is already in the Hugging Face cache (loaded as before, the hub not asked)."""
    from pathlib import Path

    from huggingface_hub import try_to_load_from_cache

    if Path(source).is_dir() or isinstance(try_to_load_from_cache(source, filename, revision=revision), str):
        return None
    return ask_hub_once(source, filename, revision)


def problem_in_chain(exc: BaseException, repo_id: str, revision: str | None = None) -> HubProblem | None:
    """``hub_problem`` (as a download's) of ``exc`` or of the error it was raised from: transformers words a download
    cut off, or a gated repository, as a configuration it "can't load" and keeps the hub's error as its cause."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        problem = hub_problem(current, repo_id, revision, downloading=True)
        if problem is not None:
            return problem
        current = current.__cause__ or current.__context__
    return None
