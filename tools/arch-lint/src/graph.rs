//! Cycles in a directed graph of `n` nodes: the strongly connected components with more than
//! one node (Tarjan's algorithm, iterative), and one shortest loop through each.

use std::collections::{BTreeSet, VecDeque};

/// The components of more than one node, each sorted, in order of their smallest node.
pub(crate) fn knots(n: usize, edges: &BTreeSet<(usize, usize)>) -> Vec<Vec<usize>> {
    let adjacency = adjacency(n, edges);
    let mut tarjan = Tarjan {
        adjacency: &adjacency,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        components: Vec::new(),
    };
    for node in 0..n {
        if tarjan.index[node].is_none() {
            tarjan.run(node);
        }
    }
    let mut knots: Vec<Vec<usize>> = tarjan
        .components
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|mut c| {
            c.sort_unstable();
            c
        })
        .collect();
    knots.sort();
    knots
}

/// A shortest loop from `knot[0]` back to itself inside `knot`, as the nodes visited
/// (`[a, b, c]` for a → b → c → a).
pub(crate) fn shortest_loop(knot: &[usize], edges: &BTreeSet<(usize, usize)>) -> Vec<usize> {
    let start = knot[0];
    let inside: BTreeSet<usize> = knot.iter().copied().collect();
    let mut previous = std::collections::BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &(_, next) in edges.range((node, 0)..=(node, usize::MAX)) {
            if next == start {
                let mut path = vec![node];
                let mut at = node;
                while at != start {
                    at = previous[&at];
                    path.push(at);
                }
                path.reverse();
                return path;
            }
            if inside.contains(&next) && !previous.contains_key(&next) {
                previous.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    // Unreachable for a real component: every node of it reaches every other.
    knot.to_vec()
}

fn adjacency(n: usize, edges: &BTreeSet<(usize, usize)>) -> Vec<Vec<usize>> {
    let mut adjacency = vec![Vec::new(); n];
    for &(from, to) in edges {
        adjacency[from].push(to);
    }
    adjacency
}

struct Tarjan<'a> {
    adjacency: &'a [Vec<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn open(&mut self, node: usize) {
        self.index[node] = Some(self.next);
        self.low[node] = self.next;
        self.next += 1;
        self.stack.push(node);
        self.on_stack[node] = true;
    }

    /// Tarjan from `root` with an explicit stack of (node, next edge to look at).
    fn run(&mut self, root: usize) {
        self.open(root);
        let mut work = vec![(root, 0usize)];
        while let Some(top) = work.last_mut() {
            let node = top.0;
            if let Some(&next) = self.adjacency[node].get(top.1) {
                top.1 += 1;
                match self.index[next] {
                    None => {
                        self.open(next);
                        work.push((next, 0));
                    }
                    Some(index) if self.on_stack[next] => {
                        self.low[node] = self.low[node].min(index);
                    }
                    Some(_) => {}
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                self.low[parent] = self.low[parent].min(self.low[node]);
            }
            if Some(self.low[node]) == self.index[node] {
                let mut component = Vec::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack[member] = false;
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                self.components.push(component);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(edges: &[(usize, usize)]) -> BTreeSet<(usize, usize)> {
        edges.iter().copied().collect()
    }

    #[test]
    fn finds_each_knot_once() {
        // 0 ⇄ 1, 2 → 3 → 4 → 2, 5 alone, 1 → 2 (joins nothing: no way back)
        let edges = set(&[(0, 1), (1, 0), (1, 2), (2, 3), (3, 4), (4, 2)]);
        assert_eq!(knots(6, &edges), vec![vec![0, 1], vec![2, 3, 4]]);
        assert!(knots(3, &set(&[(0, 1), (1, 2), (0, 2)])).is_empty());
    }

    #[test]
    fn the_loop_is_a_shortest_one() {
        // 0 → 1 → 2 → 0 and 0 → 3 → 0: the short loop is 0 → 3.
        let edges = set(&[(0, 1), (1, 2), (2, 0), (0, 3), (3, 0)]);
        let knot = knots(4, &edges).remove(0);
        assert_eq!(knot, vec![0, 1, 2, 3]);
        assert_eq!(shortest_loop(&knot, &edges), vec![0, 3]);
        let edges = set(&[(0, 1), (1, 2), (2, 0)]);
        assert_eq!(shortest_loop(&[0, 1, 2], &edges), vec![0, 1, 2]);
    }
}
