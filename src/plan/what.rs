//! What an action is, as a name: its label in the plan, the events and the messages.

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Connect,
    Lock,
    Export,
    Build,
    Pack,
    ReadCurrent,
    Receive,
    Unpack,
    LinkShared,
    Prepare,
    CheckRelease,
    Migrate,
    PostMigrate,
    Journal,
    Capacity,
    Drain,
    WaitDrained,
    Switch,
    Activate,
    Health,
    WaitProbe,
    Undrain,
    WaitHealthy,
    Soak,
    Ban,
    Record,
    Cleanup,
    Unlock,
}

impl What {
    pub const ALL: [What; 28] = [
        What::Connect,
        What::Lock,
        What::Export,
        What::Build,
        What::Pack,
        What::ReadCurrent,
        What::Receive,
        What::Unpack,
        What::LinkShared,
        What::Prepare,
        What::CheckRelease,
        What::Migrate,
        What::PostMigrate,
        What::Journal,
        What::Capacity,
        What::Drain,
        What::WaitDrained,
        What::Switch,
        What::Activate,
        What::Health,
        What::WaitProbe,
        What::Undrain,
        What::WaitHealthy,
        What::Soak,
        What::Ban,
        What::Record,
        What::Cleanup,
        What::Unlock,
    ];

    pub fn label(self) -> &'static str {
        match self {
            What::Connect => "connect",
            What::Lock => "lock",
            What::Export => "export",
            What::Build => "build",
            What::Pack => "pack",
            What::ReadCurrent => "current",
            What::Receive => "receive",
            What::Unpack => "unpack",
            What::LinkShared => "shared",
            What::Prepare => "prepare",
            What::CheckRelease => "checked",
            What::Migrate => "migrate",
            What::PostMigrate => "post-migrate",
            What::Journal => "journal",
            What::Capacity => "capacity",
            What::Drain => "drain",
            What::WaitDrained => "wait idle",
            What::Switch => "switch",
            What::Activate => "activate",
            What::Health => "health",
            What::WaitProbe => "wait probe",
            What::Undrain => "undrain",
            What::WaitHealthy => "in service",
            What::Soak => "soak",
            What::Ban => "ban",
            What::Record => "record",
            What::Cleanup => "cleanup",
            What::Unlock => "unlock",
        }
    }
}

/// In the JSON plan, an action is named by its label: the same name as in the text plan and
/// in the events' `action` field.
impl Serialize for What {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.label())
    }
}
