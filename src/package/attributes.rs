//! Small pieces of HLS attribute lists shared by the playlists' writers.

/// Quotes an attribute value: HLS quoted strings cannot hold `"` or line breaks.
pub fn quoted(value: &str) -> String {
    let clean: String = value
        .chars()
        .filter(|c| *c != '"' && *c != '\r' && *c != '\n')
        .collect();
    format!("\"{clean}\"")
}

/// Names unique within one group (HLS requires it): the second `English`
/// becomes `English 2`.
#[derive(Default)]
pub struct UniqueNames(Vec<String>);

impl UniqueNames {
    pub fn name(&mut self, wanted: &str) -> String {
        let mut name = wanted.to_string();
        let mut n = 2;
        while self.0.contains(&name) {
            name = format!("{wanted} {n}");
            n += 1;
        }
        self.0.push(name.clone());
        name
    }
}
