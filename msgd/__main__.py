import sys

from msgd.cli import main

sys.exit(main())
