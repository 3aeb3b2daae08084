// text.frag: signed-distance-field glyphs (0.5 = the outline). Small text is minified a lot (the field
// has 64 texels per em), so the coverage is supersampled at four more points around the pixel centre,
// as VisPy's TextVisual does, and thin stems are kept by a slight bias towards the inside.
//
// Textures: t_font sampler2D R8 distance field (linear filtering).
uniform sampler2D t_font;

varying vec2 v_uv;
varying vec4 v_color;

float coverage(vec2 uv, float w) {
    return smoothstep(0.5 - w, 0.5 + w, texture2D(t_font, uv).r + 0.03);
}

void main() {
    float d = texture2D(t_font, v_uv).r;
    float w = clamp(0.5 * fwidth(d), 0.01, 0.25);
    vec2 dx = 0.35 * dFdx(v_uv);
    vec2 dy = 0.35 * dFdy(v_uv);
    float a = coverage(v_uv, w);
    float ring = coverage(v_uv + dx + dy, w) + coverage(v_uv + dx - dy, w)
               + coverage(v_uv - dx + dy, w) + coverage(v_uv - dx - dy, w);
    a = (a + 0.5 * ring) / 3.0;
    if (a <= 0.0) discard;
    gl_FragColor = vec4(v_color.rgb, v_color.a * a);
}
