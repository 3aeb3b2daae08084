// matrix.frag: colormaps the float matrix atlas (a grey ramp, white -> near black).
//
// Textures: t_matrix sampler2D R32F values in 0..1 (nearest filtering: one texel per cell); the layout
//           sets that range (cnnvis.layout._build.unit_max) and Scene.validate checks it, so no clamp here.
uniform sampler2D t_matrix;

varying vec2 v_uv;
varying float v_alpha;

vec3 colormap(float x) {
    // greys, white -> near black (cnnvis.layout._palette.MATRIX_LOW, MATRIX_HIGH): no hue, as hues are
    // the edges' and the importance bars'
    return mix(vec3(0.99, 0.99, 0.99), vec3(0.12, 0.12, 0.14), x);
}

void main() {
    float value = texture2D(t_matrix, v_uv).r;
    gl_FragColor = vec4(colormap(value), v_alpha);
}
