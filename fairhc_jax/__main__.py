import sys

from fairhc_jax.cli import main

sys.exit(main())
