//! Contacts: who a person has agreed to keep in their list. A contact is made by a request that
//! the other person accepts (or declines); either side may remove it later.
//!
//! Here are the shared nouns — the [`Relation`] between me and someone else, the [`ContactList`]
//! that `/api/contacts` returns, and the [`ContactChange`] that the other contact endpoints return
//! and the `contact` frame carries — and the one rule a client needs: how a change updates its
//! list ([`ContactList::apply`]). Pure data, shared by the server and the browser.

use crate::model::{UserId, UserRef};
use serde::{Deserialize, Serialize};

/// The most contact requests one person may have waiting for an answer at once.
pub const MAX_PENDING_REQUESTS: usize = 100;

/// Where I stand with another person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// Nothing: no request either way, not contacts (a declined, withdrawn or removed one ends here).
    None,
    /// I asked them; they have not answered.
    Outgoing,
    /// They asked me; I have not answered.
    Incoming,
    /// They accepted (either way round).
    Contact,
}

/// My relation with `user` is now `relation`: the reply of the contact endpoints, and the
/// payload of the `contact` frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactChange {
    pub user: UserRef,
    pub relation: Relation,
}

/// My contacts and the requests waiting either way, each sorted by username.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactList {
    pub contacts: Vec<UserRef>,
    /// Requests to me, waiting for my answer.
    pub incoming: Vec<UserRef>,
    /// My requests, waiting for theirs.
    pub outgoing: Vec<UserRef>,
}

impl ContactList {
    /// Moves `change.user` to the list its new relation belongs in (or out of all of them).
    /// Applying the same change twice changes nothing, so frames and API replies may overlap.
    pub fn apply(&mut self, change: ContactChange) {
        let ContactChange { user, relation } = change;
        for list in [&mut self.contacts, &mut self.incoming, &mut self.outgoing] {
            list.retain(|u| u.id != user.id);
        }
        let list = match relation {
            Relation::None => return,
            Relation::Outgoing => &mut self.outgoing,
            Relation::Incoming => &mut self.incoming,
            Relation::Contact => &mut self.contacts,
        };
        let at = list.partition_point(|u| u.username < user.username);
        list.insert(at, user);
    }

    /// Where I stand with `user`.
    pub fn relation(&self, user: UserId) -> Relation {
        let has = |list: &[UserRef]| list.iter().any(|u| u.id == user);
        if has(&self.contacts) {
            Relation::Contact
        } else if has(&self.incoming) {
            Relation::Incoming
        } else if has(&self.outgoing) {
            Relation::Outgoing
        } else {
            Relation::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, name: &str) -> UserRef {
        UserRef {
            id: UserId(id),
            username: name.into(),
        }
    }

    fn change(id: i64, name: &str, relation: Relation) -> ContactChange {
        ContactChange {
            user: user(id, name),
            relation,
        }
    }

    #[test]
    fn a_change_moves_the_person_between_lists_in_name_order() {
        let mut list = ContactList::default();
        list.apply(change(3, "carol", Relation::Incoming));
        list.apply(change(2, "bob", Relation::Incoming));
        assert_eq!(list.incoming, [user(2, "bob"), user(3, "carol")]);
        assert_eq!(list.relation(UserId(2)), Relation::Incoming);

        list.apply(change(2, "bob", Relation::Contact));
        list.apply(change(2, "bob", Relation::Contact));
        assert_eq!(list.incoming, [user(3, "carol")]);
        assert_eq!(list.contacts, [user(2, "bob")]);
        assert_eq!(list.relation(UserId(2)), Relation::Contact);

        list.apply(change(4, "dave", Relation::Outgoing));
        assert_eq!(list.relation(UserId(4)), Relation::Outgoing);
        list.apply(change(4, "dave", Relation::None));
        list.apply(change(3, "carol", Relation::None));
        assert_eq!(
            list,
            ContactList {
                contacts: vec![user(2, "bob")],
                ..Default::default()
            }
        );
        assert_eq!(list.relation(UserId(9)), Relation::None);
    }

    #[test]
    fn changes_serialize_as_documented() {
        let v = serde_json::to_value(change(2, "bob", Relation::Incoming)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"user":{"id":2,"username":"bob"},"relation":"incoming"})
        );
    }
}
