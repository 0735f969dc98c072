"""UCN Viewer entry point: ``python main.py [IMAGE0 IMAGE1] [--weights W] [--device D]``."""
from ucn_gui.app import main

if __name__ == "__main__":
    raise SystemExit(main())
