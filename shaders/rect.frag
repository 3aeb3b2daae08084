// rect.frag: rounded, anti-aliased box with border; highlight ring; the importance facet fills the box
// from the bottom up to the cluster's importance.
//
// Varyings from rect.vert; uniforms u_accent vec4 (importance colour), u_ring vec4 (highlight ring).
uniform vec4 u_accent;
uniform vec4 u_ring;

varying vec2 v_local;
varying vec2 v_half;
varying vec4 v_fill;
varying vec4 v_border;
varying vec4 v_info;
varying vec4 v_state;

void main() {
    float radius = min(v_info.z, min(v_half.x, v_half.y));
    vec2 q = abs(v_local) - v_half + radius;
    float d = length(max(q, 0.0)) + min(max(q.x, q.y), 0.0) - radius;   // signed distance, px
    float highlight = v_state.y;
    float bw = mix(v_info.w, v_info.w + 1.5, highlight);
    vec4 fill = v_fill;
    if (v_state.z > 1.5 && v_info.x > 0.5 && v_info.x < 1.5) {
        // Importance facet: a bar whose height is the importance, inset by 3 px.
        float level = -v_half.y + 3.0 + v_info.y * max(2.0 * v_half.y - 6.0, 0.0);
        if (v_local.y < level && abs(v_local.x) < v_half.x - 3.0 && v_local.y > -v_half.y + 3.0)
            fill = vec4(mix(fill.rgb, u_accent.rgb, 0.35 + 0.65 * v_info.y), 1.0);
    }
    vec4 border = mix(v_border, u_ring, highlight);
    float inside = clamp(0.5 - d, 0.0, 1.0);
    float ring = bw > 0.0 ? clamp(d + bw + 0.5, 0.0, 1.0) : 0.0;
    vec4 color = mix(fill, border, ring * border.a);
    color.a = max(fill.a, ring * border.a) * inside * v_state.x;
    if (color.a <= 0.0) discard;
    gl_FragColor = color;
}
