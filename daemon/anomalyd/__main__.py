"""`python -m anomalyd` is the same as the `anomalyd` console script."""

from anomalyd.cli import main

raise SystemExit(main())
