//! Query arguments of a request target that the server itself consumes
//! (a signed link's `expires` and `token`, a player's `hint` key): read
//! them, and take them out before routes and seeking see the target.

use std::borrow::Cow;

/// The value of the first argument `name` in the target's query.
pub fn argument<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    // A fragment starts at the first '#', and a query only before it.
    let before_fragment = target.split('#').next()?;
    let query = before_fragment.split_once('?')?.1;
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
    // A fragment starts at the first '#' (and is kept as is); a query only before it.
    let (before_fragment, fragment) = match target.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (target, None),
    };
    let Some((path, query)) = before_fragment.split_once('?') else {
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
    let mut result = path.to_string();
    if !kept.is_empty() {
        result.push('?');
        result.push_str(&kept.join("&"));
    }
    if let Some(fragment) = fragment {
        result.push('#');
        result.push_str(fragment);
    }
    Cow::Owned(result)
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

    #[test]
    fn a_fragment_ends_the_query_for_both() {
        // Found by fuzz/fuzz_targets/range_query.rs: the two disagreed on '#'.
        let target = "/a?&hint=p=&hint#p=3&hint=,a";
        let without = without_arguments(target, &["hint"]);
        assert_eq!(without, "/a#p=3&hint=,a");
        assert_eq!(argument(&without, "hint"), None);
        assert_eq!(argument("/a?x=1#hint=2", "hint"), None);
        let question_in_fragment = "/a?&hint=p=#s?&hint=q";
        let without = without_arguments(question_in_fragment, &["hint"]);
        assert_eq!(without, "/a#s?&hint=q");
        assert_eq!(argument(&without, "hint"), None);
    }
}
