import sys

from cometgate.cli import main

sys.exit(main())
