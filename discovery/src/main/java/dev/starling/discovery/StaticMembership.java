package dev.starling.discovery;

import java.util.ArrayList;
import java.util.List;

/**
 * A fixed set of members (a `--join` list with no failure detector): everyone is taken to be alive,
 * and the fetch path's timeouts and fallbacks cover the ones that are not. For one node, tests, and
 * small static clusters.
 */
public final class StaticMembership implements Membership {
    private final Member self;
    private final List<Member> members;

    public StaticMembership(Member self, List<Member> others) {
        this.self = self;
        List<Member> all = new ArrayList<>();
        all.add(self);
        for (Member m : others) {
            if (!m.nodeId().equals(self.nodeId())) {
                all.add(m);
            }
        }
        this.members = List.copyOf(all);
    }

    @Override
    public Member self() {
        return self;
    }

    @Override
    public List<Member> members() {
        return members;
    }
}
