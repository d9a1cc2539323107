"""The job API: a parametric-sweep job, submitted, waited for, its tasks listed.

python examples/jobs.py             # embedded emulator (see _connect.py for a real one)
"""

import hpcsoa
from _connect import main


# README: jobs
async def run(client: hpcsoa.HpcClient) -> None:
    job_id = await client.jobs.create(name="squares", priority="Normal")
    await client.tasks.add(
        job_id,
        "echo square of *",  # each * becomes the sweep index
        name="sweep",
        type="ParametricSweep",
        start_value=1,
        end_value=5,
    )
    await client.jobs.submit(job_id)
    job = await client.jobs.wait(job_id, timeout=60)  # polls with backoff
    print(f"job {job.id} {job.name}: {job.state}")
    async for task in client.tasks.list(job_id):  # pages follow continuation tokens
        print(" ", task.full_id, task.state, task.command_line)
    async for j in client.jobs.list(state="Finished", page_size=100):
        print("finished:", j.id, j.name)


# README: end


if __name__ == "__main__":
    main(run)
