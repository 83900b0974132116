"""The "Learn flow matching" tab: OmniTalker's sampler on a 2-D toy (omnitalker/ui/toy_flow.py), interactively."""

from __future__ import annotations

import gradio as gr

from omnitalker.flow.scheduler import SOLVERS
from omnitalker.ui.toy_flow import MAX_STEPS, describe, get_toy_flow, plot_trajectories, sample_trajectories

LABEL_CHOICES = ("class 0 (blue blobs)", "class 1 (orange blobs)", "no condition")

EXPLANATION = """
**Flow matching in one picture.** A network learns the velocity that carries noise (t = 0, black) to data
(t = 1) along straight lines x_t = (1 - t) x0 + t x1; sampling integrates that velocity with an ODE solver.
OmniTalker does exactly this for its mel spectrogram and facial-motion codes, with the *same* scheduler
class used here; the toy below is trained in a few seconds on 8 blobs in two classes.

- **Steps**: fewer steps are faster but cut corners (try 1 vs 16). **Midpoint** costs 2 evaluations per step.
- **Sway** reshapes the time grid (F5-TTS): negative values put more steps near the noise end, where paths
  bend most.
- **CFG strength** w: v = v(cond) + w (v(cond) - v(dropped)). Conditions are dropped 20 % of the time in
  training (here the class label; in OmniTalker the text, audio and visual prompts), and w pushes samples
  towards the condition; too much overshoots.
"""

def learn(num_steps=8, solver="euler", sway=-1.0, cfg_strength=2.0, condition=LABEL_CHOICES[0], seed=0,
          progress=gr.Progress()):
    """Sample the toy and return (trajectory figure, summary markdown)."""
    progress(0, desc="Training the toy (first time only)")
    toy = get_toy_flow()
    label = None if condition == LABEL_CHOICES[2] else LABEL_CHOICES.index(condition)
    try:
        paths = sample_trajectories(toy.model, num_steps=int(num_steps), solver=solver, sway=float(sway),
                                    cfg_strength=float(cfg_strength), label=label, seed=int(seed))
    except ValueError as error:
        raise gr.Error(str(error)) from error
    return plot_trajectories(paths), describe(paths)


def build_learn_tab() -> None:
    """The tab's components and events (call inside a gr.Blocks / gr.Tab context)."""
    gr.Markdown(EXPLANATION)
    with gr.Row():
        with gr.Column(scale=1):
            steps = gr.Slider(1, MAX_STEPS, value=8, step=1, label="Steps")
            solver = gr.Radio(list(SOLVERS), value="euler", label="Solver")
            sway = gr.Slider(-1.0, 1.0, value=-1.0, step=0.1, label="Sway coefficient")
            cfg = gr.Slider(0.0, 6.0, value=2.0, step=0.25, label="CFG strength")
            condition = gr.Radio(list(LABEL_CHOICES), value=LABEL_CHOICES[0], label="Condition")
            seed = gr.Number(0, precision=0, label="Seed")
            run = gr.Button("Sample", variant="primary")
        with gr.Column(scale=2):
            plot = gr.Plot(label="Trajectories")
            summary = gr.Markdown()
    run.click(learn, [steps, solver, sway, cfg, condition, seed], [plot, summary], api_name="learn")
