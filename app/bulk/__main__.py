"""`python -m app.bulk`: the same as rnn-classifier-classify."""

import sys

from app.bulk.cli import main

sys.exit(main())
