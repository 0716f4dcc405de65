//! Query arguments of a request target that the server itself consumes
//! (a signed link's `expires` and `token`, a player's `hint` key): read
//! them, and take them out before routes and seeking see the target.

use std::borrow::Cow;

/// The value of the first argument `name` in the target's query.
pub fn argument<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    let query = target.split_once('?')?.1.split('#').next()?;
    query
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some((n, value)) if n == name => Some(value),
            None if pair == name => Some(""),
            _ => None,
        })
}

/// `target` without its arguments called one of `names` (borrowed when it
/// has none of them).
pub fn without_arguments<'a>(target: &'a str, names: &[&str]) -> Cow<'a, str> {
    let Some((path, query)) = target.split_once('?') else {
        return Cow::Borrowed(target);
    };
    let is_named = |pair: &&str| {
        let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
        names.contains(&name)
    };
    if !query.split('&').any(|pair| is_named(&pair)) {
        return Cow::Borrowed(target);
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !is_named(pair))
        .collect();
    if kept.is_empty() {
        Cow::Owned(path.to_string())
    } else {
        Cow::Owned(format!("{path}?{}", kept.join("&")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_found_and_removed() {
        assert_eq!(argument("/a.mp4?start=5&hint=abc", "hint"), Some("abc"));
        assert_eq!(argument("/a.mp4?hints=abc", "hint"), None);
        assert_eq!(argument("/a.mp4", "hint"), None);
        assert_eq!(without_arguments("/a.mp4", &["hint"]), "/a.mp4");
        assert_eq!(
            without_arguments("/a.mp4?start=5&expires=9&token=ab", &["expires", "token"]),
            "/a.mp4?start=5"
        );
        assert_eq!(without_arguments("/a.mp4?hint=k", &["hint"]), "/a.mp4");
        assert!(matches!(
            without_arguments("/a.mp4?start=1", &["hint"]),
            Cow::Borrowed(_)
        ));
    }
}
