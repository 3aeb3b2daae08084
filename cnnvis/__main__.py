"""python -m cnnvis ... (the same as the `cnnvis` command; `torchrun -m cnnvis analyze ...` goes through here)."""
import sys

from cnnvis.app import main

sys.exit(main())
