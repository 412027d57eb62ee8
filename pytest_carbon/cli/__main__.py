from pytest_carbon.cli import main

raise SystemExit(main())
