use phonenumber::{Mode, country};

/// The country whose national format a business's people type numbers in ("US", "GB", …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(country::Id);

impl Region {
    pub fn parse(code: &str) -> Result<Self, String> {
        code.trim()
            .to_uppercase()
            .parse::<country::Id>()
            .map(Self)
            .map_err(|_| format!("\u{201c}{code}\u{201d} is not a two-letter country code such as US or GB."))
    }

    pub fn code(&self) -> &str {
        self.0.as_ref()
    }
}

impl Default for Region {
    fn default() -> Self {
        Self(country::Id::US)
    }
}

/// A phone number in E.164 form (`+15555550100`).
///
/// Input may be national ("(555) 555-0100", read in the business's region) or international
/// ("+44 20 7946 0958"). A number is accepted when its length is possible for its country; we do not
/// insist on an assigned range, so fictional 555 numbers used in demos and tests are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(input: &str, region: Region) -> Result<Self, String> {
        let raw = input.trim();
        if raw.is_empty() {
            return Err("Enter a phone number.".into());
        }
        let invalid = || {
            format!(
                "\u{201c}{raw}\u{201d} is not a phone number we can text. Use a format like (555) 555-0100 or +15555550100."
            )
        };
        let allowed = |c: char| c.is_ascii_digit() || " +-().".contains(c);
        if raw.len() > 32 || !raw.chars().all(allowed) || raw.chars().skip(1).any(|c| c == '+') {
            return Err(invalid());
        }
        let parsed = phonenumber::parse(Some(region.0), raw).map_err(|_| invalid())?;
        let national_len = parsed.national().to_string().len() as u16;
        let possible = phonenumber::metadata::DATABASE
            .by_code(&parsed.code().value())
            .and_then(|metas| metas.into_iter().next())
            .map(|meta| {
                let d = meta.descriptors();
                [d.fixed_line(), d.mobile(), d.voip(), d.personal_number(), d.toll_free(), d.uan(), d.pager()]
                    .into_iter()
                    .flatten()
                    .chain([d.general()])
                    .any(|desc| desc.possible_length().contains(&national_len))
            })
            .unwrap_or(false);
        if !(possible || parsed.is_valid()) {
            return Err(invalid());
        }
        Ok(Self(parsed.format().mode(Mode::E164).to_string()))
    }

    /// Reads back a number this program stored (already E.164).
    pub fn from_stored(e164: String) -> Self {
        Self(e164)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number as people of `region` write it: national format for a number of that country
    /// ("(555) 555-0100"), international format otherwise ("+44 20 7946 0958").
    pub fn local(&self, region: Region) -> String {
        local_format(&self.0, region)
    }
}

/// Any phone number text (stored E.164, or a caller id as Kai sent it) in the local format of
/// `region`; text that is not a number comes back as it was.
pub fn local_format(number: &str, region: Region) -> String {
    let Ok(parsed) = phonenumber::parse(Some(region.0), number) else {
        return number.to_owned();
    };
    let home = phonenumber::metadata::DATABASE.by_id(region.0.as_ref()).map(|m| m.country_code());
    let mode = if home == Some(parsed.code().value()) { Mode::National } else { Mode::International };
    parsed.format().mode(mode).to_string()
}

impl std::fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{PhoneNumber, Region};

    fn us() -> Region {
        Region::parse("US").unwrap()
    }

    #[test]
    fn national_us_formats_become_e164() {
        for input in
            ["(555) 555-0100", "555-555-0100", "555.555.0100", "5555550100", "+1 555 555 0100", "1 (555) 555-0100"]
        {
            assert_eq!(PhoneNumber::parse(input, us()).unwrap().as_str(), "+15555550100", "{input}");
        }
    }

    #[test]
    fn international_numbers_keep_their_country() {
        let uk = PhoneNumber::parse("+44 20 7946 0958", us()).unwrap();
        assert_eq!(uk.as_str(), "+442079460958");
        let national_uk = PhoneNumber::parse("020 7946 0958", Region::parse("gb").unwrap()).unwrap();
        assert_eq!(national_uk.as_str(), "+442079460958");
    }

    #[test]
    fn rejects_impossible_numbers_with_a_message_that_says_what_to_type() {
        for bad in
            ["555-0100", "12345", "call me", "555 555 0100 ext 4", "1-800-FLOWERS", "+1 555 555 01000", "++15555550100"]
        {
            let message = PhoneNumber::parse(bad, us()).unwrap_err();
            assert!(message.contains("(555) 555-0100"), "{bad}: {message}");
        }
        assert_eq!(PhoneNumber::parse("  ", us()).unwrap_err(), "Enter a phone number.");
    }

    #[test]
    fn numbers_show_in_the_local_format_of_the_business() {
        let us_number = PhoneNumber::from_stored("+15555550100".into());
        assert_eq!(us_number.local(us()), "(555) 555-0100");
        let uk = PhoneNumber::from_stored("+442079460958".into());
        assert_eq!(uk.local(us()), "+44 20 7946 0958");
        assert_eq!(uk.local(Region::parse("GB").unwrap()), "020 7946 0958");
        assert_eq!(super::local_format("unknown caller", us()), "unknown caller");
    }

    #[test]
    fn regions_are_two_letter_codes() {
        assert_eq!(Region::parse("us").unwrap().code(), "US");
        assert!(Region::parse("USA").is_err());
    }
}
