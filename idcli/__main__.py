import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line itself is still being imported
    print("idcli: interrupted", file=sys.stderr)
    sys.exit(130)

main()
