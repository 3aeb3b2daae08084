"""python -m cnnvis.gl SCENE.npz ...: the viewer on a saved Scene (analysis files: the cnnvis-gl command)."""
import sys

from cnnvis.gl.app import main

sys.exit(main())
