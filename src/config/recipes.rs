//! Built-in recipes: framework defaults as TOML data, same schema as `Deploy.toml` minus
//! stages. `Deploy.toml` values win over a recipe's.

pub const ALL: &[(&str, &str)] = &[
    ("symfony", include_str!("../../recipes/symfony.toml")),
    ("laravel", include_str!("../../recipes/laravel.toml")),
    ("rails", include_str!("../../recipes/rails.toml")),
    ("django", include_str!("../../recipes/django.toml")),
    ("node", include_str!("../../recipes/node.toml")),
    ("static", include_str!("../../recipes/static.toml")),
];

pub fn get(name: &str) -> Option<&'static str> {
    ALL.iter().find(|(known, _)| *known == name).map(|(_, text)| *text)
}

pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|(name, _)| *name).collect()
}
