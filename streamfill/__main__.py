from streamfill.cli import main

raise SystemExit(main())
