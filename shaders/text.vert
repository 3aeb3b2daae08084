// text.vert: instanced glyph quads from one signed-distance-field glyph atlas (all labels, one draw call).
//
// Per vertex:   a_corner vec2  quad corner in {0,1}^2
// Per instance: a_anchor vec2  string anchor (left baseline) in world units (pixels for UI text)
//               a_quad   vec4  glyph quad relative to the anchor, in em: x0, y0, x1, y1 (y up)
//               a_uv     vec4  u0, v0, u1, v1 of the glyph in the atlas (v down)
//               a_size   float font size in pixels
//               a_color  vec4  RGBA
// Uniforms:     u_transform vec4, u_resolution vec2 (see common.glsl)
//               u_text_scale float  multiplies a_size (labels follow the zoom within limits)
//               u_zoom       float  the camera zoom (1 for UI text)
//               u_min_size   float  level of detail: glyphs with a_size * u_zoom below it are culled, so
//                                   small secondary labels appear only when zoomed in
#include "common.glsl"

attribute vec2 a_corner;
attribute vec2 a_anchor;
attribute vec4 a_quad;
attribute vec4 a_uv;
attribute float a_size;
attribute vec4 a_color;

uniform vec4 u_transform;
uniform vec2 u_resolution;
uniform float u_text_scale;
uniform float u_zoom;
uniform float u_min_size;

varying vec2 v_uv;
varying vec4 v_color;

void main() {
    // Snap the anchor to whole pixels: glyphs stay crisp while panning.
    vec2 anchor = floor(to_pixel(a_anchor, u_transform) + 0.5);
    vec2 pixel = anchor + mix(a_quad.xy, a_quad.zw, a_corner) * a_size * u_text_scale;
    v_uv = vec2(mix(a_uv.x, a_uv.z, a_corner.x), mix(a_uv.w, a_uv.y, a_corner.y));
    v_color = a_color;
    gl_Position = a_size * u_zoom < u_min_size ? CULLED : pixel_to_clip(pixel, u_resolution);
}
