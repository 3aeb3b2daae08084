// matrix.frag: colormaps the float matrix atlas (a light sequential map: white -> teal -> deep blue).
//
// Textures: t_matrix sampler2D R32F values in 0..1 (nearest filtering: one texel per cell); the layout
//           sets that range (cnnvis.layout._build.unit_max) and Scene.validate checks it, so no clamp here.
uniform sampler2D t_matrix;

varying vec2 v_uv;
varying float v_alpha;

vec3 colormap(float x) {
    vec3 c0 = vec3(0.97, 0.98, 0.99);
    vec3 c1 = vec3(0.62, 0.85, 0.82);
    vec3 c2 = vec3(0.20, 0.55, 0.72);
    vec3 c3 = vec3(0.10, 0.20, 0.45);
    if (x < 0.33) return mix(c0, c1, x / 0.33);
    if (x < 0.66) return mix(c1, c2, (x - 0.33) / 0.33);
    return mix(c2, c3, (x - 0.66) / 0.34);
}

void main() {
    float value = texture2D(t_matrix, v_uv).r;
    gl_FragColor = vec4(colormap(value), v_alpha);
}
