// patch.frag: samples the patch atlas; a tinted patch gets a frame of its tint inside its box.
//
// Textures: t_atlas sampler2D RGBA8 patch atlas (linear filtering).
// Varyings from quad.vert: v_tint (RGBA, alpha 0: no frame), v_corner (0..1 across the box), v_size (px).
uniform sampler2D t_atlas;

varying vec2 v_uv;
varying float v_alpha;
varying vec4 v_tint;
varying vec2 v_corner;
varying vec2 v_size;

void main() {
    vec4 c = texture2D(t_atlas, v_uv);
    if (v_tint.a > 0.0) {
        // the frame: 18% of the shorter side, 1.5 to 4 px wide (a patch a few pixels across is all tint)
        vec2 edge = min(v_corner, 1.0 - v_corner) * v_size;
        float width = clamp(0.18 * min(v_size.x, v_size.y), 1.5, 4.0);
        if (min(edge.x, edge.y) < width)
            c = vec4(mix(c.rgb, v_tint.rgb, v_tint.a), 1.0);
    }
    gl_FragColor = vec4(c.rgb, c.a * v_alpha);
}
