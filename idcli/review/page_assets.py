"""The storyboard page's stylesheet and script, as static text, and its Content-Security-Policy.

The script: Tab walks the links; ``j``/``k`` (or ``n``/``p``) move between shots, ``f`` to the next shot whose every
take is flagged; the director picks takes (a button per take, ``1``–``9``/``0``/``s``), kept in the browser's
localStorage under the page's ``data-run`` with the shot last viewed, and exports them as ``picks.json`` for ``idcli
select --from`` (picks_file.py; ``e`` brings the focus up to the export button, Escape back to the shot it left). It
reads what it needs from the page's attributes (``data-run``, each take's ``data-key``, a shot's recorded
``data-selected``) and writes text only, never markup. It names each take's links for a screen reader, and checks a
full image is there before opening it (at open, three takes' for the review folder sent alone; any other when its link
is followed). The policy lets only this script run (by its hash).
"""

from __future__ import annotations


def csp() -> str:
    """The page's Content-Security-Policy: its own images, its inline style, and only its own script (by
    hash). Every text on the page is escaped already; this is the second wall, so that a prompt or a
    sidecar from outside the studio that ever got past the escaping could still run nothing, load nothing
    from the network and send nothing anywhere."""
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
            "base-uri 'none'; form-action 'none'")


CSS = """
:root{color-scheme:dark;--bg:#16161a;--panel:#222228;--text:#ececf0;--muted:#a8a8b3;--accent:#7cc4ff;
--flag:#ff7a59;--ok:#5fd39b;--sel:#ffd25f;--on-flag:#1a0d08;--on-sel:#1f1800;--stale:#b58cff;--rule:#33333b;
--rule2:#44444f;--rule3:#2c2c33;--btn:#34343e;--btn-line:#55555f;--chip:#3a3a44}
/* A light screen asked for (prefers-color-scheme: light, a laptop in daylight): the same page, dark on light; the marks
that are text on it (flags, picks) darker, each 4.5:1 or more on its background (WCAG AA) */
@media screen and (prefers-color-scheme:light){:root{color-scheme:light;--bg:#f4f4f7;--panel:#fff;--text:#18181d;
--muted:#55555f;--accent:#0a58a8;--flag:#b3361a;--sel:#7a5600;--on-flag:#fff;--on-sel:#fff;--stale:#6a3db8;
--rule:#d4d4dc;--rule2:#babac6;--rule3:#e0e0e6;--btn:#e8e8ee;--btn-line:#8a8a96;--chip:#e2e2e8}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);
color:var(--text)}
a{color:var(--accent)}
a:focus-visible,section:focus-visible,[tabindex]:focus-visible,summary:focus-visible{outline:3px solid var(--sel);
outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:var(--panel);padding:6px;z-index:2}
header{padding:16px 24px;border-bottom:1px solid var(--rule)}
h1{margin:0 0 4px;font-size:1.5rem}
/* a project or shot id is up to 64 characters with no space to break at: wider than a phone's screen */
h1,.shot h2,nav a{overflow-wrap:anywhere}
.summary,.keys{margin:2px 0;color:var(--muted)}
kbd{border:1px solid var(--btn-line);border-radius:3px;padding:0 4px;font-size:.85em}
nav ol{display:flex;flex-wrap:wrap;gap:4px 14px;padding:0;margin:8px 0 0;list-style:none}
nav.scenes>ol{gap:2px 6px}nav.scenes>ol>li{flex:0 1 auto;max-width:100%}
nav.scenes>ol>li:has(details[open]){flex-basis:100%}
nav.scenes details ol{margin:2px 0 8px 16px}
summary{cursor:pointer}.count{color:var(--muted);font-size:.85em}
/* the scene index's count of shots picked; a picked take (class picked too) keeps its own colours */
nav .picked{color:var(--sel)}
.scene{margin:28px 0 0;font-size:1.3rem;font-weight:600;border-bottom:2px solid var(--rule2)}
.dot{color:var(--flag)}
.problems{margin:12px 24px;padding:8px 16px;border:1px solid var(--flag);border-radius:6px}
.problems h2{font-size:1rem;margin:4px 0}
main{padding:8px 24px 48px}
.shot{margin:18px 0;padding-top:4px;border-top:1px solid var(--rule3)}
/* A film's shots off screen are neither laid out nor painted until scrolled near (their size estimated,
then remembered): the page opens as fast as its first screen, not its 2,000th shot. */
.shot{content-visibility:auto;contain-intrinsic-size:auto 360px}
.shot h2{font-size:1.15rem;margin:6px 0 10px}
.num{color:var(--muted)}
.meta{color:var(--muted);font-weight:normal;font-size:.9rem;margin-left:6px}
.takes{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:14px}
.take{background:var(--panel);border:2px solid transparent;border-radius:8px;padding:10px}
.take.selected{border-color:var(--sel)}
/* with the script running, the border follows the director's pick (the select idcli recorded, or a change) */
.picking .take.selected{border-color:transparent}.picking .take.picked{border-color:var(--sel)}
.pick{display:block;margin:4px 0}
button{font:inherit;color:var(--text);background:var(--btn);border:1px solid var(--btn-line);border-radius:6px;
padding:2px 12px;cursor:pointer}
button:focus-visible{outline:3px solid var(--sel);outline-offset:2px}
button.pick[aria-pressed="true"]{background:var(--sel);color:var(--on-sel);border-color:var(--sel);font-weight:600}
.pick-note{color:var(--sel);font-weight:normal;font-size:.9rem;margin-left:8px}.pick-note.stale{color:var(--stale)}
.navpick{color:var(--sel);font-size:.85em}.navout{color:var(--muted);font-size:.85em}
.picks{margin:6px 0}.picks p{margin:4px 0}.pick-count{color:var(--sel);margin-right:8px}
.pick-where{color:var(--muted);font-size:.88rem}.pick-where.unkept{color:var(--flag);font-weight:600}
.picks textarea{width:100%;max-width:60rem;background:var(--panel);color:var(--text);border:1px solid var(--rule2)}
.shot-prompt{margin:0 0 8px}
.take.flagged{box-shadow:inset 0 0 0 1px rgba(255,122,89,.45)}
.thumb{display:block}
.thumb img{display:block;width:100%;height:auto;border-radius:4px;background:#000}
.take h3{margin:8px 0 2px;font-size:1rem}
.badges{margin:2px 0 6px;min-height:1.2em}
.badge{display:inline-block;border-radius:10px;padding:0 8px;margin:0 4px 2px 0;font-size:.8rem;font-weight:600;
background:var(--chip)}
.badge.flag{background:var(--flag);color:var(--on-flag)}.badge.ok{background:var(--ok);color:#06170e}
.badge.sel{background:var(--sel);color:var(--on-sel)}.badge.warn{background:#b58cff;color:#140a24}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 10px;margin:6px 0;font-size:.88rem}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
table.faces{border-collapse:collapse;font-size:.85rem;width:100%;margin-top:4px}
table.faces caption{text-align:left;color:var(--muted)}
table.faces th,table.faces td{text-align:left;padding:1px 6px 1px 0;border-bottom:1px solid var(--rule)}
td.box{color:var(--muted);font-size:.78rem}
.qa-said{margin:0 0 6px;padding-left:18px;font-size:.88rem;color:var(--flag)}
.qa-key{margin:2px 0;color:var(--muted)}.qa-key p{margin:4px 0;font-size:.88rem;max-width:60rem}
.leak,.qa-none{margin:4px 0;font-size:.85rem;color:var(--muted)}
.strip img{display:block;width:100%;height:auto;margin-top:6px;image-rendering:pixelated}
.links{margin:6px 0 0;font-size:.88rem}
.noimg,.empty{color:var(--muted)}
/* the review folder sent alone (the script's sentAlone): no full images, sidecars or mask strips to show */
.alone .links,.alone .strip{display:none}.sent-alone,.no-file{color:var(--flag);font-size:.88rem}
/* a take's full image found missing (the script's missing()): its "full image" is no link now */
.links a:not([href]){color:inherit}.no-file{margin:6px 0 0}
@media (prefers-reduced-motion:no-preference){html{scroll-behavior:smooth}}
/* A touch screen alone (a phone, a tablet): no keys to press, so their help gives way to the boards (the contact
sheet's link stays) */
@media screen and (pointer:coarse) and (hover:none){.key-help{display:none}}
/* Any touch screen, a touch laptop's beside its touchpad too: each button a finger's size, 44 px (Apple's guidelines;
WCAG 2.5.5), and the index's marks said in words, as their tooltips say them to a mouse and no finger reaches one */
.legend{display:none}
@media screen and (any-pointer:coarse){button{min-height:44px}button.pick{min-width:88px}.legend{display:inline}}
/* A short screen (a 13-inch laptop at 150 % zoom is 910 × 512 CSS px) or a phone's narrow one: the header's rows
close up and the index of shots keeps to two rows that scroll (whole when reached by Tab or a scene is opened),
so the first screen shows boards, not the header (docs/review.md, "On a short screen"). */
@media screen and (max-height:720px),screen and (max-width:600px){
header{padding:4px 16px}
header h1{display:inline;font-size:1.2rem;line-height:1.2;margin:0 8px 0 0}header .summary{display:inline}
.summary,.keys,.qa-key,.picks,header nav{font-size:.85rem;line-height:1.3}
/* the count, its buttons and where picks are kept (or the warning that they are not) run on as one paragraph */
.picks{margin:2px 0}.picks p{display:inline;margin:0 8px 0 0}.pick-where{font-size:inherit}
header nav ol{margin-top:2px}
/* Its padding keeps a focused link's outline (drawn closer) inside the scroller, which clips it; rows snap whole
into view. Walked by keyboard it shows whole: in a scroller, Space, Page Down and the arrows scrolled the index,
not the page. */
nav:not(.scenes)>ol,nav.scenes>ol:not(:has(details[open])){max-height:calc(2.9em + 6px);overflow-y:auto;padding:3px;
margin:0 -3px;scroll-padding:3px;scroll-snap-type:y mandatory}header nav>ol>li{scroll-snap-align:start}
header nav:has(:focus-visible)>ol{max-height:none;overflow:visible}
header nav a:focus-visible,header nav summary:focus-visible{outline-offset:0}
nav.scenes{display:flex;align-items:flex-start;gap:0 10px}nav.scenes>p.count{flex:0 1 auto;max-width:30%;margin:2px 0 0}
nav.scenes>ol{flex:1 1 0;min-width:0}
main{padding:4px 16px 48px}
}
/* A very short screen (1366 × 768 at 200 % zoom is 683 × 384 CSS px; a phone held sideways): closed up, the header
still took 62 % of it, one row of boards below. It keeps to a third of the screen and scrolls on its own (Tab brings
each stop into view in it; its end reached, the wheel goes on to the page): nothing in it is left out. */
@media screen and (max-height:480px){header{max-height:35vh;overflow-y:auto;scroll-padding:4px}}
"""

SCRIPT = """
(function(){
  var shots=Array.prototype.slice.call(document.querySelectorAll('section.shot'));
  var byId=Object.create(null),navMark=Object.create(null);
  function idOf(s){return s.id.slice(5);}  // section id="shot-<id>"
  shots.forEach(function(s){byId[idOf(s)]=s;});
  Array.prototype.forEach.call(document.querySelectorAll('nav a[href^="#shot-"]'),function(a){
    navMark[a.getAttribute('href').slice(6)]=a.parentNode;
  });
  // What the director changed here, by shot: {take: n or null (no pick), key: the job key of the take seen}.
  // One key per output folder (data-run): every page opened from file:// shares one localStorage.
  var storeKey='idcli-review:'+document.body.getAttribute('data-run');
  // Whether the browser keeps what is stored: one that blocks sites from saving data (a setting, often a locked-down
  // studio laptop's) refuses localStorage, and picks made here would be lost at a reload without a word.
  var kept=true;
  var saved=read();
  function read(){
    var raw=null;try{raw=localStorage.getItem(storeKey);}catch(e){kept=false;}
    try{var v=JSON.parse(raw||'{}');}catch(e){v={};}
    if(!v||typeof v!=='object'){v={};}
    var picks=Object.create(null),p=v.picks&&typeof v.picks==='object'?v.picks:{};
    // Only picks as this script writes them: a take number (or null) and a key of 16 hex digits (or null). The
    // store is shared by every page from file:// and outlives page versions; anything else is dropped.
    Object.keys(p).forEach(function(id){var q=p[id];
      if(byId[id]&&q&&typeof q==='object'&&(q.take===null||Number.isInteger(q.take))&&
        (q.key===null||(typeof q.key==='string'&&/^[0-9a-f]{16}$/.test(q.key)))){picks[id]={take:q.take,key:q.key};}});
    return {picks:picks,last:typeof v.last==='string'?v.last:''};
  }
  function write(){try{localStorage.setItem(storeKey,JSON.stringify(saved));}catch(e){if(kept){kept=false;where();}}}
  // The page open twice (a second window, a tab opened again): each kept the picks it read when it opened, and a pick
  // in one wrote over the other's, lost unsaid. Another tab's write is read here, so the next write holds both (the
  // shots shown again only when the picks changed: the other tab writes its place as it scrolls).
  window.addEventListener('storage',function(e){
    if(e.key!==null&&e.key!==storeKey){return;}
    var was=JSON.stringify(saved.picks);saved=read();
    if(JSON.stringify(saved.picks)!==was){shots.forEach(show);count();}});
  function where(){  // the bar says where picks are kept; here, that they are not
    var w=document.querySelector('.pick-where');if(!w||kept){return;}
    w.classList.add('unkept');w.textContent='This browser keeps no picks for this page (it does not let pages save '+
      'data): picks made here are lost when the page is reloaded or closed. Export them before, and send the '+
      'picks.json to the artist.';
  }
  // The review folder sent alone (OUT/review/ zipped without the renders: enough to look and pick): every link to a
  // full image, a sidecar or a mask strip (../) led to the browser's "file not found" page, the take's picture first.
  // Up to three full images are tried, the first take's, the last's and the middle one's: one there is enough to
  // know the folder is whole, and a take tried before it takes out its own links only (two takes deleted or being
  // re-rendered at either end took out every take's). None there: those links are taken out (no Tab stops to nowhere)
  // and the picks bar says why. Any other take's missing image is found when its link is followed (followed()):
  // trying every image at open would read a film's thousands.
  function sentAlone(){
    var all=Array.prototype.filter.call(document.querySelectorAll('a.thumb'),function(a){
      return !!a.querySelector('img');}),tries=[];
    [0,all.length-1,all.length>>1].forEach(function(i){if(i>=0&&tries.indexOf(all[i])<0){tries.push(all[i]);}});
    (function next(i){
      if(i>=tries.length){if(tries.length){alone();}return;}
      probe(tries[i].getAttribute('href'),function(){tries.slice(0,i).forEach(function(a){missing(a,false);});},
        function(){next(i+1);});
    })(0);
  }
  function probe(href,there,not){var p=new Image();p.onload=there;p.onerror=not;p.src=href;}
  function missing(thumb,said){  // the take's full image is not in the folder: its two links to it lead nowhere
    var t=thumb.closest('article.take'),href=thumb.getAttribute('href'),l=t.querySelector('p.links');
    Array.prototype.forEach.call(t.querySelectorAll('a[href]'),function(a){
      if(a.getAttribute('href')===href){a.removeAttribute('href');}});
    if(!l||t.querySelector('.no-file')){return;}
    var n=document.createElement('p');n.className='no-file';n.tabIndex=-1;
    n.textContent='The full image is not in this folder now (deleted, or being re-rendered, since the page was '+
      'written).';
    l.parentNode.insertBefore(n,l);
    if(said){n.focus();}  // followed from its link, gone with it: the focus stays in the take, on why
  }
  // A take's picture or "full image" followed: the image is tried first, then opened, or, deleted since the page was
  // written, its links are taken out and the take says why, instead of the browser's "file not found" page. A click
  // for a new tab or window (a modifier key) is the browser's.
  function followed(e,a){
    var t=a.closest('article.take'),thumb=t?t.querySelector('a.thumb'):null;
    if(!thumb||a.getAttribute('href')!==thumb.getAttribute('href')||e.button!==0||e.ctrlKey||e.metaKey||e.shiftKey||
      e.altKey){return;}
    e.preventDefault();
    var url=a.href;probe(a.getAttribute('href'),function(){location.assign(url);},function(){missing(thumb,true);});
  }
  function alone(){
    document.body.classList.add('alone');
    Array.prototype.forEach.call(document.querySelectorAll('main a[href^="../"]'),function(a){
      a.removeAttribute('href');});
    var w=document.querySelector('.pick-where');if(!w){return;}
    var n=document.createElement('p');n.className='sent-alone';
    n.textContent='This copy holds the review folder alone: the full images and sidecars are not in it, so the page '+
      'links to none of them (to open them, ask the artist for the whole output folder, zipped). Looking and picking '+
      'work as ever.';
    w.parentNode.insertBefore(n,w.nextSibling);
  }
  // Each take's "full image" and "sidecar" named with its shot and take for a screen reader, whose list of links read
  // them once a take, alike (the words on screen stay): named here, not in the markup, where the names were 91 bytes a
  // take, 0.43 MB of a film's 4,729 takes
  function named(){
    Array.prototype.forEach.call(document.querySelectorAll('article.take p.links a'),function(a){
      a.setAttribute('aria-label',a.textContent+' of '+a.closest('article.take').getAttribute('aria-label'));});
  }
  function takeOf(s,n){return n===null?null:s.querySelector('article.take[data-take="'+n+'"]');}
  function recorded(s){  // the select idcli select recorded, as the page was written
    var n=s.getAttribute('data-selected');n=n===null?null:Number(n);
    var t=takeOf(s,n),k=s.getAttribute('data-selected-key');  // the render picked, when the take was re-rendered
    if(damaged(s)){return {take:n,key:null};}  // no render known as picked: picking the take records it as it is
    return {take:n,key:k!==null?k:t?t.getAttribute('data-key'):null};
  }
  function damaged(s){return s.hasAttribute('data-selected-damaged');}  // its record in selects.json is damaged
  function pickable(s){return !s.hasAttribute('data-orphan');}  // not a shot taken out of the shot list
  function orphanTake(t){return !!t&&t.hasAttribute('data-orphan');}  // a take beyond the shot's takes
  function pickOf(s){return saved.picks[idOf(s)]||recorded(s);}
  function holding(s,p){  // the other takes showing the render picked: the shot's takes shifted (a seed inserted)
    return Array.prototype.filter.call(s.querySelectorAll('article.take'),function(t){
      return p.key!==null&&t.getAttribute('data-key')===p.key&&Number(t.getAttribute('data-take'))!==p.take&&
        !orphanTake(t);}).map(function(t){return t.getAttribute('data-take');});
  }
  function standing(s){  // a pick that stands: its take is on the page and within the shot's takes, or another
    // take holds the image picked (its own removed, or beyond the takes: the pick follows it there, as `select`)
    var p=pickOf(s),t=takeOf(s,p.take);return !!t&&!orphanTake(t)||p.take!==null&&holding(s,p).length>0;}
  function exportable(s){  // a change made here that export picks carries (never a pick of a take beyond the takes)
    return pickable(s)&&changed(s)&&!orphanTake(takeOf(s,pickOf(s).take));}
  function changed(s){var p=saved.picks[idOf(s)],r=recorded(s);
    return !!p&&(p.take!==r.take||(p.take!==null&&p.key!==r.key));}
  function child(parent,cls){  // the span of class cls in parent, made on first use (the markup stays small)
    var e=parent.querySelector(':scope>.'+cls);
    if(!e){e=document.createElement('span');e.className=cls;parent.appendChild(e);}
    return e;
  }
  function lost(s){  // a take picked here of a shot since taken out of the shot list (or renamed): never exported
    var p=saved.picks[idOf(s)];return !pickable(s)&&!!p&&p.take!==null;}
  function show(s){
    if(!pickable(s)){  // no buttons; a pick made here before the shot left the shot list is said, not dropped unsaid
      var q=saved.picks[idOf(s)],g=s.querySelector('h2');
      if(g&&(lost(s)||g.querySelector('.pick-note'))){var n=child(g,'pick-note');n.classList.add('stale');
        n.textContent=lost(s)?' picked take '+q.take+' here: the shot is no longer in the shot list, so the pick is'+
        ' not exported; if it was renamed, pick again under its new name':'';}
      return;}
    var p=pickOf(s),seen=takeOf(s,p.take),stale=!!seen&&p.key!==seen.getAttribute('data-key'),
      gone=p.take!==null&&!seen,  // picked here, then the take was removed (the page rewritten)
      beyond=orphanTake(seen),  // picked here, then the shot's takes were lowered below it: not exported
      broken=!saved.picks[idOf(s)]&&damaged(s)&&!!seen;  // the recorded select, its record damaged (as the notes say)
    Array.prototype.forEach.call(s.querySelectorAll('article.take'),function(t){
      var on=p.take!==null&&Number(t.getAttribute('data-take'))===p.take,b=t.querySelector('button.pick');
      if(!b&&!orphanTake(t)){  // made here, not in the markup: 4,729 takes' buttons were 0.16 MB of a film's page
        b=document.createElement('button');b.type='button';b.className='pick';t.insertBefore(b,t.querySelector('dl'));}
      t.classList.toggle('picked',on);
      if(b){b.setAttribute('aria-pressed',on?'true':'false');b.textContent=on?'picked':'pick';
        // its name for a screen reader says which take it picks (every button's text is "pick"), and stays the same
        // when pressed: aria-pressed says whether it is
        b.setAttribute('aria-label','pick take '+t.getAttribute('data-take')+' of '+idOf(s));
        b.title='pick take '+t.getAttribute('data-take')+' for the shot (its number key; s with the focus on it)';}
    });
    var moved=stale||gone||beyond?holding(s,p):[];
    var text=moved.length?' picked take '+p.take+': the image you picked is '+(moved.length===1?'take '+moved[0]:
      'each of takes '+moved.join(', '))+' now (the shot\\'s takes shifted); pick take '+moved[0]+' to keep it':
      gone?' picked take '+p.take+': no longer rendered; pick another':
      beyond?' picked take '+p.take+': beyond the takes of the shot now; pick another':
      broken?' picked take '+p.take+': '+s.getAttribute('data-selected-damaged')+'; look again':
      stale?' picked take '+p.take+': re-rendered since you picked it; look again':
      changed(s)?(p.take===null?' no pick (not recorded yet)':' picked take '+p.take+' (not recorded yet)'):'';
    printed(s,p,moved,seen,beyond||stale);
    var h=s.querySelector('h2');
    if(h&&(text||h.querySelector('.pick-note'))){var note=child(h,'pick-note');note.textContent=text;
      note.classList.toggle('stale',stale||gone||beyond);}
    // the index marks the take the pick stands on: where its image is now when the takes shifted (as `select`)
    var li=navMark[idOf(s)],mark=p.take===null?'':' \u2713t'+(moved.length?moved[0]:p.take)+(changed(s)?'*':'');
    if(li&&(mark||li.querySelector('.navpick'))){child(li,'navpick').textContent=mark;}
  }
  // The take the shot's printed board shows (data-board, print_boards.py): the one picked here, not recorded yet,
  // where its image is now (the takes shifted); picked here as none, the first take QA did not flag (export's
  // fallback); else the one the page was written with. The director, with no idcli to record picks, prints the
  // boards of the picks made on the page, each marked on paper as not recorded yet (class picked-here). A pick that
  // does not stand on its take (unseen: beyond the shot's takes, or re-rendered since) prints the board as written:
  // the new render is an image the director never saw, and export's file of it is refused.
  var written=Object.create(null);
  function printed(s,p,moved,seen,unseen){
    var id=idOf(s),mine=null;
    if(!(id in written)){written[id]=s.querySelector('article.take[data-board]');}
    if(changed(s)){mine=moved.length?takeOf(s,Number(moved[0])):p.take!==null?(unseen?null:seen):
      s.querySelector('article.take:not(.flagged):not([data-orphan])')||s.querySelector('article.take:not([data-orphan])');}
    var board=mine||written[id];
    Array.prototype.forEach.call(s.querySelectorAll('article.take'),function(t){
      if(t===board){t.setAttribute('data-board','1');
        // its picture loads now, as the written board's did with the page: a browser prints only pictures it has
        // (a pick kept from an earlier visit, of a take never scrolled to, printed an empty frame)
        var img=t.querySelector('.thumb img[loading=lazy]');if(img){img.loading='eager';}}
      else{t.removeAttribute('data-board');}
      t.classList.toggle('picked-here',t===board&&!!mine&&p.take!==null);});
  }
  function count(){
    var picked=0,open=0,live=shots.filter(pickable),gone=shots.filter(lost).length;
    live.forEach(function(s){if(standing(s)){picked++;}if(exportable(s)){open++;}});
    var c=document.querySelector('.pick-count');
    if(c){c.textContent=picked+' of '+live.length+' shots picked'+(open?' \u00b7 '+open+' changed here, not recorded'+
      ' yet: export them for the artist':'')+(gone?' \u00b7 '+gone+' picked here of shots no longer in the shot list'+
      ' (see their headings): not exported':'');}
    Array.prototype.forEach.call(document.querySelectorAll('nav.scenes details'),function(d){
      var n=0,mark=d.querySelector('summary .picked');
      Array.prototype.forEach.call(d.querySelectorAll('ol a[href^="#shot-"]'),function(a){
        var s=byId[a.getAttribute('href').slice(6)];if(s&&pickable(s)&&standing(s)){n++;}});
      if(mark){mark.textContent=n?'\u2713'+n:'';}
    });
  }
  function pick(s,n){  // n: a take number, or null for no pick; the same take again unpicks
    if(!s||!pickable(s)){return;}
    var now=pickOf(s),t=takeOf(s,n);
    if(n!==null&&(!t||orphanTake(t))){return;}
    // the same take again unpicks it, unless it was re-rendered since: then it is picked as rendered now
    if(n!==null&&now.take===n&&now.key===t.getAttribute('data-key')){n=null;t=null;}
    var want={take:n,key:t?t.getAttribute('data-key'):null},r=recorded(s),id=idOf(s);
    if(want.take===r.take&&want.key===r.key){delete saved.picks[id];}else{saved.picks[id]=want;}
    write();show(s);count();remember(s);
  }
  function exportPicks(){
    // What the director changed here, and only that: a select left as the page shows it is the artist's, and an
    // idcli select made after the page was written must stand when the file is recorded.
    var out={},any=false;
    shots.forEach(function(s){
      if(!exportable(s)){return;}
      var p=pickOf(s);
      out[idOf(s)]=p.take===null?{take:null}:{take:p.take,key:p.key};any=true;  // null: took back
    });
    var box=document.querySelector('.picks .export'),area=box.querySelector('textarea');
    box.hidden=false;box.querySelector('.exported').hidden=!any;box.querySelector('.nothing').hidden=any;
    area.hidden=!any;
    // a very short screen's header scrolls on its own, and the box opens at its end, out of its sight: shown there
    var head=box.closest('header');if(head&&head.scrollHeight>head.clientHeight){box.scrollIntoView({block:'nearest'});}
    if(!any){area.value='';return;}
    var text=JSON.stringify({schema:1,kind:'idcli-picks',project:document.body.getAttribute('data-project'),
      run:document.body.getAttribute('data-run'),exported:new Date().toISOString(),picks:out},null,1)+'\\n';
    var url=URL.createObjectURL(new Blob([text],{type:'application/json'}));
    var a=document.createElement('a');a.href=url;a.download='picks.json';a.hidden=true;
    document.body.appendChild(a);a.click();a.remove();
    setTimeout(function(){URL.revokeObjectURL(url);},60000);
    area.value=text;box.hidden=false;
  }
  var forgetArmed=0;
  function forget(b){
    if(Date.now()-forgetArmed>4000){forgetArmed=Date.now();b.textContent='click again to forget them';
      setTimeout(function(){if(forgetArmed){b.textContent='forget changes made here';forgetArmed=0;}},4000);return;}
    forgetArmed=0;b.textContent='forget changes made here';saved.picks=Object.create(null);write();
    shots.forEach(show);count();
  }
  // The place: the shot last looked at, in the URL (#shot-…, as j/k move) and in localStorage, so a reload or
  // reopening the page comes back to it instead of the top.
  function remember(s){
    saved.last=idOf(s);write();
    try{history.replaceState(null,'','#'+s.id);}catch(e){}
  }
  // The shot the keys act on: the one holding the focus while the view has not moved since j/k put it there, or
  // while it is in view; scrolled away from it (Page Down, Space, the wheel), the shot at the top of the view (the
  // first not scrolled past: a view opening in the gap between two shots is the next one's), so a digit never picks
  // in a shot off screen. (The last shots of a short page cannot scroll to the top: the focus the keys gave them
  // still counts.)
  var keyedAt=null;
  function current(){
    var a=document.activeElement&&document.activeElement.closest?document.activeElement.closest('section.shot'):null;
    var r=a?a.getBoundingClientRect():null;
    if(r&&(window.scrollY===keyedAt||(r.bottom>0&&r.top<window.innerHeight))){return shots.indexOf(a);}
    for(var i=0;i<shots.length;i++){if(shots[i].getBoundingClientRect().bottom>8){return i;}}
    return shots.length-1;
  }
  function go(i){if(i<0||i>=shots.length){return;}shots[i].focus({preventScroll:true});shots[i].scrollIntoView();
    keyedAt=window.scrollY;remember(shots[i]);}
  // The shot the keys were on when `e` took the focus up to export picks: focusing the button scrolls a deep page to
  // its header, and from there `j` went to the second shot. Escape goes back to it, and `j`/`k` go on from it.
  var exportedFrom=null;
  function inPicksBar(){var a=document.activeElement;return !!(a&&a.closest&&a.closest('section.picks'));}
  document.addEventListener('keydown',function(e){
    if(e.altKey||e.ctrlKey||e.metaKey){return;}
    if(exportedFrom!==null&&!inPicksBar()){exportedFrom=null;}  // the focus left the bar: the keys act where it is
    // before the text-box check: the bar's one text box, picks.json to copy, is read-only, so Escape types nothing
    if(e.key==='Escape'&&exportedFrom!==null){go(exportedFrom);exportedFrom=null;e.preventDefault();return;}
    var tag=(e.target&&e.target.tagName)||'';if(tag==='INPUT'||tag==='TEXTAREA'){return;}
    var i=current();
    if(exportedFrom!==null&&/^[jnkpf]$/.test(e.key)){i=exportedFrom;exportedFrom=null;}
    if(e.key==='j'||e.key==='n'){go(i+1);e.preventDefault();}
    else if(e.key==='k'||e.key==='p'){go(i-1);e.preventDefault();}
    else if(e.key==='f'){
      for(var j=i+1;j<shots.length;j++){if(shots[j].dataset.flagged){go(j);break;}}
      e.preventDefault();
    }
    else if(/^[0-9]$/.test(e.key)&&shots[i]){pick(shots[i],e.key==='0'?null:Number(e.key));e.preventDefault();}
    else if(e.key==='e'){  // back to the picks bar: Tab goes on from the focus down the page, and Home leaves it there
      var x=document.querySelector('section.picks:not([hidden]) button.export-picks');
      if(x){exportedFrom=shots[i]?i:null;x.focus();e.preventDefault();}
    }
    else if(e.key==='s'){
      var t=document.activeElement&&document.activeElement.closest?document.activeElement.closest('article.take'):null,
        r=t?t.getBoundingClientRect():null;
      // only a take in view: scrolled away from the focus (Page Down, the wheel), s picked in a shot off screen
      if(t&&r.bottom>0&&r.top<window.innerHeight){pick(t.closest('section.shot'),Number(t.getAttribute('data-take')));
        e.preventDefault();}
    }
  });
  document.addEventListener('click',function(e){
    var a=e.target&&e.target.closest?e.target.closest('main a[href]'):null;if(a){followed(e,a);return;}
    var b=e.target&&e.target.closest?e.target.closest('button'):null;if(!b){return;}
    if(b.classList.contains('pick')){var t=b.closest('article.take');
      pick(t.closest('section.shot'),Number(t.getAttribute('data-take')));}
    else if(b.classList.contains('export-picks')){exportPicks();}
    else if(b.classList.contains('forget-picks')){forget(b);}
  });
  var settle=0;
  window.addEventListener('scroll',function(){clearTimeout(settle);settle=setTimeout(function(){
    if(window.scrollY>0){
      // the shot holding the focus while it is in view (the last shots cannot scroll to the top), else the top one
      var a=document.activeElement&&document.activeElement.closest?document.activeElement.closest('section.shot'):null;
      var r=a?a.getBoundingClientRect():null;
      if(r&&r.bottom>0&&r.top<window.innerHeight){remember(a);return;}
      var y=window.scrollY+8,i=0;while(i+1<shots.length&&shots[i].offsetTop+shots[i].offsetHeight<=y){i++;}
      if(shots[i]){remember(shots[i]);}return;}
    saved.last='';write();  // back at the top: reopen there
    try{history.replaceState(null,'',location.pathname+location.search);}catch(e){}
  },400);},{passive:true});
  var bar=document.querySelector('section.picks');if(bar){bar.hidden=false;}
  where();
  named();
  sentAlone();
  document.body.classList.add('picking');
  shots.forEach(show);count();
  var back=!location.hash&&saved.last?byId[saved.last]:null;
  if(back){back.focus({preventScroll:true});back.scrollIntoView({behavior:'instant'});}
})();
"""
