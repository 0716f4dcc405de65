//! Language tags for playlists: the BCP 47 tag HLS's `LANGUAGE` and DASH's
//! `lang` want (`en`, `pt-BR`) from an MP4 track's ISO 639-2 code (`eng`),
//! and the name players show (`English`), from a built-in table of the
//! common languages.

/// (ISO 639-1, ISO 639-2/T, ISO 639-2/B where it differs, English name)
const LANGUAGES: &[(&str, &str, &str, &str)] = &[
    ("ar", "ara", "", "Arabic"),
    ("bg", "bul", "", "Bulgarian"),
    ("bn", "ben", "", "Bengali"),
    ("ca", "cat", "", "Catalan"),
    ("cs", "ces", "cze", "Czech"),
    ("cy", "cym", "wel", "Welsh"),
    ("da", "dan", "", "Danish"),
    ("de", "deu", "ger", "German"),
    ("el", "ell", "gre", "Greek"),
    ("en", "eng", "", "English"),
    ("es", "spa", "", "Spanish"),
    ("et", "est", "", "Estonian"),
    ("eu", "eus", "baq", "Basque"),
    ("fa", "fas", "per", "Persian"),
    ("fi", "fin", "", "Finnish"),
    ("fr", "fra", "fre", "French"),
    ("ga", "gle", "", "Irish"),
    ("gl", "glg", "", "Galician"),
    ("he", "heb", "", "Hebrew"),
    ("hi", "hin", "", "Hindi"),
    ("hr", "hrv", "", "Croatian"),
    ("hu", "hun", "", "Hungarian"),
    ("id", "ind", "", "Indonesian"),
    ("is", "isl", "ice", "Icelandic"),
    ("it", "ita", "", "Italian"),
    ("ja", "jpn", "", "Japanese"),
    ("ko", "kor", "", "Korean"),
    ("lt", "lit", "", "Lithuanian"),
    ("lv", "lav", "", "Latvian"),
    ("ms", "msa", "may", "Malay"),
    ("nb", "nob", "", "Norwegian Bokmål"),
    ("nl", "nld", "dut", "Dutch"),
    ("no", "nor", "", "Norwegian"),
    ("pl", "pol", "", "Polish"),
    ("pt", "por", "", "Portuguese"),
    ("ro", "ron", "rum", "Romanian"),
    ("ru", "rus", "", "Russian"),
    ("sk", "slk", "slo", "Slovak"),
    ("sl", "slv", "", "Slovenian"),
    ("sr", "srp", "", "Serbian"),
    ("sv", "swe", "", "Swedish"),
    ("sw", "swa", "", "Swahili"),
    ("ta", "tam", "", "Tamil"),
    ("th", "tha", "", "Thai"),
    ("tl", "tgl", "", "Tagalog"),
    ("tr", "tur", "", "Turkish"),
    ("uk", "ukr", "", "Ukrainian"),
    ("ur", "urd", "", "Urdu"),
    ("vi", "vie", "", "Vietnamese"),
    ("zh", "zho", "chi", "Chinese"),
];

/// Region subtags players commonly meet, with their names.
const REGIONS: &[(&str, &str)] = &[
    ("AR", "Argentina"),
    ("AT", "Austria"),
    ("AU", "Australia"),
    ("BE", "Belgium"),
    ("BR", "Brazil"),
    ("CA", "Canada"),
    ("CH", "Switzerland"),
    ("CN", "China"),
    ("DE", "Germany"),
    ("ES", "Spain"),
    ("FR", "France"),
    ("GB", "United Kingdom"),
    ("HK", "Hong Kong"),
    ("IE", "Ireland"),
    ("IN", "India"),
    ("IT", "Italy"),
    ("MX", "Mexico"),
    ("NZ", "New Zealand"),
    ("PT", "Portugal"),
    ("TW", "Taiwan"),
    ("US", "United States"),
];

/// The BCP 47 tag of an ISO 639-2 code (`eng` → `en`); a code the table
/// does not know stays as it is (a valid tag too), `und` included.
pub fn tag_of_iso639_2(code: &str) -> String {
    LANGUAGES
        .iter()
        .find(|(_, t, b, _)| *t == code || (!b.is_empty() && *b == code))
        .map_or_else(|| code.to_string(), |(short, ..)| (*short).to_string())
}

/// The English name of a BCP 47 tag: `fr` → `French`, `pt-BR` →
/// `Portuguese (Brazil)`; the tag itself when the table does not know it.
pub fn name_of(tag: &str) -> String {
    let mut subtags = tag.split(['-', '_']);
    let language = subtags.next().unwrap_or_default().to_ascii_lowercase();
    let Some((.., name)) = LANGUAGES
        .iter()
        .find(|(short, long, bib, _)| *short == language || *long == language || *bib == language)
    else {
        return tag.to_string();
    };
    // A region (two letters or three digits) names itself in brackets;
    // scripts and variants are left to the tag.
    let region = subtags.find(|s| {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic()))
            || (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
    });
    match region {
        Some(region) => {
            let upper = region.to_ascii_uppercase();
            let region_name = REGIONS
                .iter()
                .find(|(code, _)| *code == upper)
                .map_or(upper.as_str(), |(_, name)| name);
            format!("{name} ({region_name})")
        }
        None => (*name).to_string(),
    }
}

/// Whether `text` is shaped like a BCP 47 tag: letters, digits and hyphens,
/// a primary subtag of 2 to 8 letters, each subtag 1 to 8 characters.
pub fn is_tag(text: &str) -> bool {
    let mut subtags = text.split('-');
    let primary = subtags.next().unwrap_or_default();
    (2..=8).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_codes_become_tags_and_tags_names() {
        assert_eq!(tag_of_iso639_2("eng"), "en");
        assert_eq!(tag_of_iso639_2("fre"), "fr");
        assert_eq!(tag_of_iso639_2("fra"), "fr");
        assert_eq!(tag_of_iso639_2("und"), "und");
        assert_eq!(tag_of_iso639_2("xyz"), "xyz");
        assert_eq!(name_of("en"), "English");
        assert_eq!(name_of("fra"), "French");
        assert_eq!(name_of("pt-BR"), "Portuguese (Brazil)");
        assert_eq!(name_of("es-419"), "Spanish (419)");
        assert_eq!(name_of("zh-Hant-TW"), "Chinese (Taiwan)");
        assert_eq!(name_of("en-ZA"), "English (ZA)");
        assert_eq!(name_of("und"), "und");
        assert_eq!(name_of("tlh"), "tlh");
    }

    #[test]
    fn tags_are_told_from_other_words() {
        for good in ["en", "pt-BR", "zh-Hant-TW", "es-419", "fil"] {
            assert!(is_tag(good), "{good}");
        }
        for bad in ["", "e", "en-", "en--US", "en_US", "toolongtag1", "e1"] {
            assert!(!is_tag(bad), "{bad}");
        }
    }
}
