"""python -m cnnvis.gl ... (the same as cnnvis-gl)."""
from cnnvis.gl.app import main

main()
