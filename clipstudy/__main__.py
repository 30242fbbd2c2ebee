from clipstudy.cli import main

raise SystemExit(main())
