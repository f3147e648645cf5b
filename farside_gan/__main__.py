import sys

from farside_gan.cli import main

sys.exit(main())
