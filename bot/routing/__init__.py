"""The handler registry (`Router`), the dispatcher that runs the first matching route, and the
`Context` a handler gets."""
