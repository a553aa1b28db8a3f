"""What people see of the months: alerts by email, OpenLineage events, the Taxi results view and its
charts, and progress lines in the task logs."""
