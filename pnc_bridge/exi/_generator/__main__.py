import sys

from . import REPO, generate

if __name__ == "__main__":
    print("generating from exi_schemas/ ...", file=sys.stderr)
    generate(REPO, log=lambda m: print(m, file=sys.stderr))
