import sys

from sqz.cli import main

sys.exit(main())
