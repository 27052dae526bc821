"""policy-eval's action gate alone, on a Push-T world-model directory, at one unguided step and at 3 steps guided
by 2 (its 16 seeded starts, 8 random-action steps): no outcome head or pose reader needed.

    python scripts/action_gate.py build/zoo/pusht/model
"""
import sys

from vid2world.world.world_model import WorldModel
from vid2world.data.spec import ActionSpec
from vid2world.decide.policy_eval import action_response
from vid2world.decide.rollouts import real_starts

model = WorldModel.from_pretrained(sys.argv[1])
spec = ActionSpec.from_dict(model.metadata["actions"])
starts = real_starts("pusht", list(range(16)), 2, 20, 64)
for steps, guidance in ((1, 1.0), (3, 2.0)):
    g = action_response(model, model.sampling("fast", steps=steps, guidance=guidance), starts, spec, 8, 0)
    print(f"steps {steps} guidance {guidance}: ratio {g['ratio']:.3f} (response {g['response']:.2f}, noise {g['noise']:.2f})", flush=True)
