"""`python -m cometgate.worker`: run the local model worker (see server.py)."""

import sys

from cometgate.worker.server import main

sys.exit(main())
