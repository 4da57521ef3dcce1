"""Control of MicroSIP: commands built and checked, a transport chosen, dials given call ids."""
