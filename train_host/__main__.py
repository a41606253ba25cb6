"""`python -m train_host`."""

import sys

from train_host.cli import main

sys.exit(main())
