"""``python -m hepprob``: the same command line as ``hepprob``."""

from hepprob.cli import main

if __name__ == "__main__":
    main()
