// curve.frag: anti-aliased ribbon edge from the signed distance to the centre line.
//
// Varyings from curve.vert: v_dist (px), v_half (px), v_color.
varying float v_dist;
varying float v_half;
varying vec4 v_color;

void main() {
    float coverage = clamp(v_half + 0.5 - abs(v_dist), 0.0, 1.0);
    if (coverage <= 0.0) discard;
    gl_FragColor = vec4(v_color.rgb, v_color.a * coverage);
}
