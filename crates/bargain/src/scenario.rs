//! Scenario files of other negotiation tools, either format: GENIUS XML ([`crate::genius`])
//! and NegMAS YAML or JSON ([`crate::negmas`]), read into the same [`Scenario`].

pub use crate::genius::Scenario;
use crate::position::PositionSpec;
use crate::space::Issue;
use crate::Result;

/// A scenario file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScenarioFormat {
    /// GENIUS: a `<negotiation_template>` domain and `<utility_space>` profiles.
    Genius,
    /// NegMAS: an outcome space and one utility function per party.
    Negmas,
}

impl ScenarioFormat {
    /// The extensions of its files, the one written first.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            ScenarioFormat::Genius => &[".xml"],
            ScenarioFormat::Negmas => &[".yml", ".yaml", ".json"],
        }
    }

    /// Reads a domain file (name, text) and the profiles (party, file name, text).
    pub fn read(
        self,
        domain_file: &str,
        domain: &str,
        profiles: &[(String, String, String)],
    ) -> Result<Scenario> {
        match self {
            ScenarioFormat::Genius => crate::genius::read(domain_file, domain, profiles),
            ScenarioFormat::Negmas => crate::negmas::read(domain_file, domain, profiles),
        }
    }

    /// Writes a domain file and one profile per position: their texts.
    pub fn write(
        self,
        name: &str,
        issues: &[Issue],
        positions: &[&PositionSpec],
    ) -> (String, Vec<String>) {
        match self {
            ScenarioFormat::Genius => crate::genius::write(name, issues, positions),
            ScenarioFormat::Negmas => crate::negmas::write(name, issues, positions),
        }
    }
}
