//! Union-find over candidate pairs, and the choice of the member each cluster keeps.

use serde::{Deserialize, Serialize};

/// Disjoint sets with path halving and union by size.
#[derive(Debug, Clone)]
pub struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    pub fn new(n: usize) -> UnionFind {
        UnionFind {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    pub fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] as usize != x {
            let grand = self.parent[self.parent[x] as usize];
            self.parent[x] = grand;
            x = grand as usize;
        }
        x
    }

    /// The number of members in the set of `x`.
    pub fn set_size(&mut self, x: usize) -> usize {
        let root = self.find(x);
        self.size[root] as usize
    }

    /// Joins the sets of `a` and `b`; returns whether they were apart.
    pub fn union(&mut self, a: usize, b: usize) -> bool {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return false;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a as u32;
        self.size[a] += self.size[b];
        true
    }
}

/// Which member of a cluster is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KeepPolicy {
    /// The first in corpus order: stable, and what a streaming tool would keep.
    #[default]
    First,
    /// The longest text: the repost that kept the most.
    Longest,
    /// The highest quality score from the cleaner (ties and unscored: first).
    Score,
}

/// Facts about a document that the keep policy looks at.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    pub len: usize,
    pub score: Option<f64>,
}

/// The index of the member of `members` (indices in corpus order) to keep.
pub fn choose(members: &[usize], facts: &[Member], policy: KeepPolicy) -> usize {
    let first = members[0];
    match policy {
        KeepPolicy::First => first,
        KeepPolicy::Longest => members.iter().copied().fold(first, |best, m| {
            if facts[m].len > facts[best].len {
                m
            } else {
                best
            }
        }),
        KeepPolicy::Score => members.iter().copied().fold(first, |best, m| {
            match (facts[m].score, facts[best].score) {
                (Some(s), Some(b)) if s > b => m,
                (Some(_), None) => m,
                _ => best,
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_find_is_transitive() {
        let mut uf = UnionFind::new(6);
        assert!(uf.union(0, 1));
        assert!(uf.union(1, 2));
        assert!(!uf.union(0, 2));
        assert!(uf.union(4, 5));
        assert_eq!(uf.find(0), uf.find(2));
        assert_ne!(uf.find(0), uf.find(4));
        assert_ne!(uf.find(3), uf.find(4));
    }

    #[test]
    fn keep_policies() {
        let facts = [
            Member {
                len: 10,
                score: None,
            },
            Member {
                len: 30,
                score: Some(0.2),
            },
            Member {
                len: 20,
                score: Some(0.9),
            },
        ];
        let all = [0, 1, 2];
        assert_eq!(choose(&all, &facts, KeepPolicy::First), 0);
        assert_eq!(choose(&all, &facts, KeepPolicy::Longest), 1);
        assert_eq!(choose(&all, &facts, KeepPolicy::Score), 2);
        assert_eq!(choose(&[0], &facts, KeepPolicy::Score), 0);
    }
}
