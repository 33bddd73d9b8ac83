from pnc_bridge.cli import main

raise SystemExit(main())
