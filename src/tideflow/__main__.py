"""``python -m tideflow`` is the ``tideflow`` command."""

from tideflow.cli.main import main

main()
