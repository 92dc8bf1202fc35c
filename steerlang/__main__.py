import sys

from steerlang.cli import main

sys.exit(main())
