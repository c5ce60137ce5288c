# The two commands of the README. Both set up everything they need (scripts/bootstrap.sh).
.PHONY: demo test setup

demo:   ## set up, then run the whole system on a short sequence; writes demo_out/
	bash scripts/demo.sh

test:   ## set up, then run every test
	bash scripts/test.sh

setup:  ## only set up .venv (ROS 2 wheels, torch CPU, interfaces, editable packages)
	bash scripts/bootstrap.sh
