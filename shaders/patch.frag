// patch.frag: samples the patch atlas.
//
// Textures: t_atlas sampler2D RGBA8 patch atlas (linear filtering).
uniform sampler2D t_atlas;

varying vec2 v_uv;
varying float v_alpha;

void main() {
    vec4 c = texture2D(t_atlas, v_uv);
    gl_FragColor = vec4(c.rgb, c.a * v_alpha);
}
