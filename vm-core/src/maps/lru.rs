//! Recency order for `BPF_MAP_TYPE_LRU_HASH` and `BPF_MAP_TYPE_LRU_PERCPU_HASH`.
//!
//! An exact LRU: one doubly linked list threaded through the hash map's slot numbers, most
//! recently used at the head. Program-side lookups and every successful update move an element
//! to the head; inserting into a full map evicts the tail.
//!
//! The kernel is only approximately LRU, and this model deliberately does not copy its
//! machinery: it keeps active/inactive lists with a reference bit (set on lookup, acted on
//! lazily when lists rotate), per-CPU local free lists, and when it runs out of free nodes it
//! shrinks the inactive list in batches (up to `LOCAL_FREE_TARGET`, 128, nodes at a time, fewer
//! on recent kernels), so a full kernel LRU map may drop several elements for one insert.
//! It also takes a free node before checking `BPF_NOEXIST`/`BPF_EXIST`, so even a failing or
//! replacing update can evict; here evictions happen only when a new key is inserted into a
//! full map. Exact LRU is the behaviour programs are written against; tests that compare with
//! a real kernel must keep LRU maps below capacity.

/// "No slot" marker in the links.
const NIL: u32 = u32::MAX;

#[derive(Clone)]
pub(crate) struct LruList {
    prev: Vec<u32>,
    next: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used: the next victim.
    tail: u32,
}

impl LruList {
    pub(crate) fn new() -> Self {
        LruList {
            prev: Vec::new(),
            next: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    /// Grows the link arrays as slots are first handed out, so a big, mostly empty map costs
    /// nothing here.
    fn ensure(&mut self, slot: u32) {
        let need = slot as usize + 1;
        if self.prev.len() < need {
            self.prev.resize(need, NIL);
            self.next.resize(need, NIL);
        }
    }

    /// Links a slot that is not in the list as the most recently used.
    pub(crate) fn push_front(&mut self, slot: u32) {
        self.ensure(slot);
        let s = slot as usize;
        self.prev[s] = NIL;
        self.next[s] = self.head;
        if self.head == NIL {
            self.tail = slot;
        } else {
            self.prev[self.head as usize] = slot;
        }
        self.head = slot;
    }

    /// Removes a linked slot.
    pub(crate) fn unlink(&mut self, slot: u32) {
        let s = slot as usize;
        if s >= self.prev.len() {
            return;
        }
        let (p, n) = (self.prev[s], self.next[s]);
        if p == NIL {
            if self.head != slot {
                return; // not linked
            }
            self.head = n;
        } else {
            self.next[p as usize] = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.prev[n as usize] = p;
        }
        self.prev[s] = NIL;
        self.next[s] = NIL;
    }

    /// Marks a linked slot as just used.
    pub(crate) fn touch(&mut self, slot: u32) {
        if self.head != slot {
            self.unlink(slot);
            self.push_front(slot);
        }
    }

    /// The least recently used slot.
    pub(crate) fn oldest(&self) -> Option<u32> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// Slots from most to least recently used (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn order(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut s = self.head;
        while s != NIL && out.len() <= self.prev.len() {
            out.push(s);
            s = self.next[s as usize];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::def;
    use super::super::*;
    use super::LruList;
    use crate::program::MapType;

    #[test]
    fn list_links_and_unlinks() {
        let mut l = LruList::new();
        for s in [0, 1, 2] {
            l.push_front(s);
        }
        assert_eq!(l.order(), vec![2, 1, 0]);
        l.touch(0);
        assert_eq!(l.order(), vec![0, 2, 1]);
        l.unlink(2);
        assert_eq!(l.order(), vec![0, 1]);
        assert_eq!(l.oldest(), Some(1));
        l.unlink(2); // not linked: no effect
        l.unlink(0);
        l.unlink(1);
        assert_eq!(l.oldest(), None);
        assert!(l.order().is_empty());
    }

    fn k(i: u32) -> [u8; 4] {
        i.to_le_bytes()
    }

    fn keys(m: &Map) -> Vec<u32> {
        m.entries()
            .into_iter()
            .filter_map(|(k, _)| k.try_into().ok().map(u32::from_le_bytes))
            .collect()
    }

    #[test]
    fn full_map_evicts_least_recently_used() {
        let mut m = Map::new(&def(MapType::LruHash, 4, 8, 3), 1).expect("map");
        for i in 0..3 {
            m.update(&k(i), &[i as u8; 8], BPF_ANY, 0).expect("fill");
        }
        // Use 0, so 1 becomes the oldest.
        assert!(m.lookup(&k(0), 0).is_some());
        assert_eq!(m.update(&k(3), &[3; 8], BPF_ANY, 0), Ok(()), "never E2BIG");
        let mut now = keys(&m);
        now.sort();
        assert_eq!(now, vec![0, 2, 3]);
        // Updating an existing key refreshes it: 2 is now the oldest... until we touch it.
        m.update(&k(2), &[22; 8], BPF_EXIST, 0).expect("replace");
        m.update(&k(4), &[4; 8], BPF_NOEXIST, 0).expect("insert");
        let mut now = keys(&m);
        now.sort();
        assert_eq!(now, vec![2, 3, 4], "0 was the oldest after 2 was refreshed");
        assert_eq!(m.user_lookup(&k(2)), Ok(vec![22; 8]));
    }

    #[test]
    fn user_lookup_does_not_refresh() {
        let mut m = Map::new(&def(MapType::LruHash, 4, 8, 2), 1).expect("map");
        m.update(&k(0), &[0; 8], BPF_ANY, 0).expect("0");
        m.update(&k(1), &[1; 8], BPF_ANY, 0).expect("1");
        assert!(m.user_lookup(&k(0)).is_ok());
        m.update(&k(2), &[2; 8], BPF_ANY, 0).expect("2");
        assert_eq!(
            m.user_lookup(&k(0)),
            Err(MapErrno::NoEnt),
            "syscall lookup leaves order alone"
        );
    }

    #[test]
    fn lru_flag_errors_have_no_side_effects() {
        let mut m = Map::new(&def(MapType::LruHash, 4, 8, 1), 1).expect("map");
        m.update(&k(0), &[0; 8], BPF_ANY, 0).expect("0");
        assert_eq!(
            m.update(&k(0), &[1; 8], BPF_NOEXIST, 0),
            Err(MapErrno::Exist)
        );
        assert_eq!(m.update(&k(1), &[1; 8], BPF_EXIST, 0), Err(MapErrno::NoEnt));
        assert_eq!(
            m.update(&k(1), &[1; 8], BPF_F_LOCK, 0),
            Err(MapErrno::Inval)
        );
        assert_eq!(m.user_lookup(&k(0)), Ok(vec![0; 8]));
        assert_eq!(m.delete(&k(0)), Ok(()));
        assert_eq!(m.delete(&k(0)), Err(MapErrno::NoEnt));
        m.update(&k(5), &[5; 8], BPF_ANY, 0)
            .expect("reuse freed slot");
        assert_eq!(keys(&m), vec![5]);
    }

    #[test]
    fn lru_percpu_isolates_cpus_and_evicts() {
        let mut m = Map::new(&def(MapType::LruPercpuHash, 4, 4, 2), 2).expect("map");
        m.update(&k(0), &[7; 4], BPF_ANY, 1).expect("cpu1 insert");
        // A program insert zeroes the other CPUs' copies.
        assert_eq!(
            m.user_lookup(&k(0)),
            Ok(vec![0, 0, 0, 0, 0, 0, 0, 0, 7, 7, 7, 7, 0, 0, 0, 0])
        );
        m.update(&k(0), &[9; 4], BPF_EXIST, 0)
            .expect("cpu0 replace");
        let o1 = m.lookup(&k(0), 1).expect("cpu1");
        assert_eq!(&m.slab()[o1..o1 + 4], &[7; 4], "cpu1 copy untouched");
        m.update(&k(1), &[1; 4], BPF_ANY, 0).expect("1");
        m.update(&k(2), &[2; 4], BPF_ANY, 0).expect("2 evicts 0");
        let mut now = keys(&m);
        now.sort();
        assert_eq!(now, vec![1, 2]);
    }

    #[test]
    fn lru_with_no_prealloc_is_refused() {
        let mut d = def(MapType::LruHash, 4, 4, 2);
        d.flags = BPF_F_NO_PREALLOC;
        assert!(matches!(
            Map::new(&d, 1).err().map(|e| e.reason),
            Some(MapErrorKind::Flags { .. })
        ));
    }
}
