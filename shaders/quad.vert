// quad.vert: instanced textured quads, one atlas per program: learned-feature patches (patch.frag, RGBA
// atlas) and activation matrices (matrix.frag, float atlas of neurons x classes).
//
// Per vertex:   a_corner vec2  quad corner in {0,1}^2
// Per instance: a_box    vec4  x0, y0, x1, y1 world box
//               a_uv     vec4  u0, v0, u1, v1 in the atlas; v grows downward (numpy row order), so the
//                              box top shows row v0
//               a_tint   vec4  RGBA frame drawn inside the box by patch.frag (alpha 0: none; the matrices
//                              leave it 0)
//               a_alpha  float opacity; 0 hides the quad (other facet)   [dynamic buffer]
// Uniforms:     u_transform vec4, u_resolution vec2 (see common.glsl)
#include "common.glsl"

attribute vec2 a_corner;
attribute vec4 a_box;
attribute vec4 a_uv;
attribute vec4 a_tint;
attribute float a_alpha;

uniform vec4 u_transform;
uniform vec2 u_resolution;

varying vec2 v_uv;
varying float v_alpha;
varying vec4 v_tint;
varying vec2 v_corner;     // 0..1 across the box
varying vec2 v_size;       // the box's size in pixels

void main() {
    vec2 world = mix(a_box.xy, a_box.zw, a_corner);
    v_uv = vec2(mix(a_uv.x, a_uv.z, a_corner.x), mix(a_uv.w, a_uv.y, a_corner.y));
    v_alpha = a_alpha;
    v_tint = a_tint;
    v_corner = a_corner;
    v_size = abs(to_pixel(a_box.zw, u_transform) - to_pixel(a_box.xy, u_transform));
    gl_Position = a_alpha <= 0.0 ? CULLED : pixel_to_clip(to_pixel(world, u_transform), u_resolution);
}
