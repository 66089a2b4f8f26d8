#version 330 core
// The body's fragment shader (renderer/scene.py, MatteShaders): the diffuse part of pyrender's
// metallic-roughness shading (a non-metal: 4 % specular reflectance, so 96 % × 96 % of the base colour
// is diffuse), its ambient term and its gamma, without the specular highlight, which on our matte body
// (roughness 0.6) is faint and costs most of the shading.
struct DirectionalLight {
    vec3 color;
    float intensity;
    vec3 direction;
};

struct Material {
    vec3 emissive_factor;
    vec4 base_color_factor;
    float metallic_factor;
    float roughness_factor;
};

uniform Material material;
uniform DirectionalLight directional_lights[MAX_DIRECTIONAL_LIGHTS];
uniform int n_directional_lights;
uniform vec3 ambient_light;

in vec3 frag_normal;
out vec4 frag_color;

const float PI = 3.141592653589793;
const float DIFFUSE = 0.96 * 0.96;

void main()
{
    vec3 base = material.base_color_factor.rgb;
    vec3 n = normalize(frag_normal);
    vec3 color = base * ambient_light;
    for (int i = 0; i < n_directional_lights; i++) {
        float nl = clamp(dot(n, -directional_lights[i].direction), 0.001, 1.0);
        color += nl * directional_lights[i].intensity * directional_lights[i].color * (DIFFUSE / PI) * base;
    }
    frag_color = clamp(vec4(pow(color, vec3(1.0 / 2.2)), material.base_color_factor.a), 0.0, 1.0);
}
