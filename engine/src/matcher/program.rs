//! A rule's condition as a branching program: its tests in a flat array,
//! each step naming the step to take next when its test holds and when it
//! does not.
//!
//! Walking the condition's tree costs a recursive call per node, AND and OR
//! included, and each call saves and restores registers: on the samples'
//! events that walk was as costly as the tests it ran. Compiled this way,
//! ANDs, ORs, NOTs and constants leave no step of their own: they only set
//! where each test leads. The tests run in the tree's order and short-circuit
//! as it does, so a program decides exactly as its tree and runs the very
//! same tests.
//!
//! `a and (b or not c)` becomes three steps, stored last child first (each
//! child's steps need the step of the child after it), so the program
//! starts at step 2:
//!
//! | step | test | holds | fails |
//! | --- | --- | --- | --- |
//! | 2 | `a` | 1 | reject |
//! | 1 | `b` | accept | 0 |
//! | 0 | `c` | reject | accept |

use super::compile::Node;

/// Where a step leads: the index of the next step, or one of these.
const ACCEPT: u32 = u32::MAX;
const REJECT: u32 = u32::MAX - 1;

/// What one step tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leaf {
    /// An atom (or a compiler's gate, decided alike).
    Atom(u32),
    /// An atom the literal scan decides: true if the scan found it, false
    /// if not. Told apart when compiled, so that a miss is a byte's test,
    /// not a call that looks the atom up (it was 14 calls an event on the
    /// bench corpus, most of them for such atoms).
    Scanned(u32),
    /// Whether any needle of a needle set holds.
    AnyOf(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    leaf: Leaf,
    on_true: u32,
    on_false: u32,
}

/// A condition compiled to steps (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Program {
    steps: Box<[Step]>,
    /// The first step, or `ACCEPT` / `REJECT` for a constant condition.
    entry: u32,
}

impl Program {
    /// Compiles a condition's tree; `scanned` tells the atoms the literal
    /// scan decides (see [`Leaf::Scanned`]).
    pub(super) fn of(node: &Node, scanned: &impl Fn(u32) -> bool) -> Program {
        let mut steps = Vec::new();
        let entry = emit(node, ACCEPT, REJECT, scanned, &mut steps);
        Program {
            steps: steps.into_boxed_slice(),
            entry,
        }
    }

    /// Runs the program: `test` decides each leaf it reaches, in the tree's
    /// order.
    #[inline]
    pub(super) fn run(&self, mut test: impl FnMut(Leaf) -> bool) -> bool {
        let mut at = self.entry;
        loop {
            match at {
                ACCEPT => return true,
                REJECT => return false,
                _ => {
                    let step = &self.steps[at as usize];
                    at = if test(step.leaf) {
                        step.on_true
                    } else {
                        step.on_false
                    };
                }
            }
        }
    }
}

/// Emits the steps of `node`, which goes on to `t` when it holds and to `f`
/// when not, and returns its first step (or `t` / `f` when it decides
/// without a test). Children are emitted last first, since each one's
/// continuation is the step of the child after it.
fn emit(node: &Node, t: u32, f: u32, scanned: &impl Fn(u32) -> bool, steps: &mut Vec<Step>) -> u32 {
    let mut leaf = |leaf: Leaf| {
        steps.push(Step {
            leaf,
            on_true: t,
            on_false: f,
        });
        steps.len() as u32 - 1
    };
    match node {
        Node::Atom(a) | Node::Gate(a) if scanned(*a) => leaf(Leaf::Scanned(*a)),
        Node::Atom(a) | Node::Gate(a) => leaf(Leaf::Atom(*a)),
        Node::AnyOf(set) => leaf(Leaf::AnyOf(*set)),
        Node::Const(true) => t,
        Node::Const(false) => f,
        Node::Not(n) => emit(n, f, t, scanned, steps),
        // Each child but the last goes on to the next one when it holds.
        Node::And(children) => children
            .iter()
            .rev()
            .fold(t, |next, child| emit(child, next, f, scanned, steps)),
        // ... and when it does not, for an OR.
        Node::Or(children) => children
            .iter()
            .rev()
            .fold(f, |next, child| emit(child, t, next, scanned, steps)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree's own short-circuit walk, recording the leaves it tests
    /// (the atoms of even number taken for scanned ones).
    fn walk(node: &Node, truth: &dyn Fn(Leaf) -> bool, seen: &mut Vec<Leaf>) -> bool {
        let mut test = |l: Leaf| {
            seen.push(l);
            truth(l)
        };
        match node {
            Node::Atom(a) | Node::Gate(a) if even(*a) => test(Leaf::Scanned(*a)),
            Node::Atom(a) | Node::Gate(a) => test(Leaf::Atom(*a)),
            Node::AnyOf(s) => test(Leaf::AnyOf(*s)),
            Node::Const(b) => *b,
            Node::Not(n) => !walk(n, truth, seen),
            Node::And(v) => v.iter().all(|n| walk(n, truth, seen)),
            Node::Or(v) => v.iter().any(|n| walk(n, truth, seen)),
        }
    }

    fn even(a: u32) -> bool {
        a.is_multiple_of(2)
    }

    fn none(_: u32) -> bool {
        false
    }

    /// A small deterministic generator (xorshift), so the test needs no
    /// crate and replays the same trees.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn tree(rng: &mut Rng, depth: u32, next_leaf: &mut u32) -> Node {
        let pick = if depth == 0 {
            rng.below(3)
        } else {
            rng.below(7)
        };
        let mut leaf = || {
            *next_leaf += 1;
            *next_leaf - 1
        };
        match pick {
            0 => Node::Atom(leaf()),
            1 => Node::AnyOf(leaf()),
            2 => match rng.below(4) {
                0 => Node::Const(rng.below(2) == 0),
                _ => Node::Gate(leaf()),
            },
            3 => Node::Not(Box::new(tree(rng, depth - 1, next_leaf))),
            k => {
                let n = rng.below(4) as usize;
                let v = (0..n).map(|_| tree(rng, depth - 1, next_leaf)).collect();
                if k % 2 == 0 {
                    Node::And(v)
                } else {
                    Node::Or(v)
                }
            }
        }
    }

    #[test]
    fn the_table_of_the_module_documentation() {
        let node = Node::And(vec![
            Node::Atom(0),
            Node::Or(vec![Node::Atom(1), Node::Not(Box::new(Node::Atom(2)))]),
        ]);
        let p = Program::of(&node, &none);
        let step = |leaf, on_true, on_false| Step {
            leaf,
            on_true,
            on_false,
        };
        // Emitted last child first: `c`, `b`, then `a`.
        assert_eq!(
            &*p.steps,
            &[
                step(Leaf::Atom(2), REJECT, ACCEPT),
                step(Leaf::Atom(1), ACCEPT, 0),
                step(Leaf::Atom(0), 1, REJECT),
            ]
        );
        assert_eq!(p.entry, 2);
    }

    #[test]
    fn constants_and_empty_groups_decide_without_a_step() {
        for (node, want) in [
            (Node::Const(true), true),
            (Node::Const(false), false),
            (Node::And(vec![]), true),
            (Node::Or(vec![]), false),
            (Node::Not(Box::new(Node::And(vec![]))), false),
            (Node::And(vec![Node::Const(true), Node::Or(vec![])]), false),
        ] {
            let p = Program::of(&node, &none);
            assert!(p.steps.is_empty(), "{node:?}");
            assert_eq!(p.run(|_| unreachable!("no test")), want, "{node:?}");
        }
    }

    /// Random trees under every assignment of their leaves (up to 10):
    /// the program's verdict and the leaves it tests, in order, are the
    /// tree walk's.
    #[test]
    fn programs_decide_and_test_as_their_trees() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut checked = 0;
        for _ in 0..3_000 {
            let mut leaves = 0;
            let node = tree(&mut rng, 4, &mut leaves);
            if leaves > 10 {
                continue;
            }
            let p = Program::of(&node, &even);
            assert!(p.steps.len() <= leaves as usize);
            for bits in 0u32..1 << leaves {
                let truth = |l: Leaf| {
                    let (Leaf::Atom(i) | Leaf::Scanned(i) | Leaf::AnyOf(i)) = l;
                    bits >> i & 1 == 1
                };
                let mut want_seen = Vec::new();
                let want = walk(&node, &truth, &mut want_seen);
                let mut seen = Vec::new();
                let got = p.run(|l| {
                    seen.push(l);
                    truth(l)
                });
                assert_eq!((got, &seen), (want, &want_seen), "{node:?} under {bits:b}");
                checked += 1;
            }
        }
        assert!(checked > 10_000, "only {checked} cases");
    }
}
